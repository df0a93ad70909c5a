// openid-client runs CIBA (poll mode) against a live psc-idp:
//   node openid_client_ciba.mjs ISSUER CLIENT_ID SECRET LOGIN_HINT BINDING_MESSAGE
// Prints one JSON line when the request is accepted ({auth_req_id, expires_in, interval}),
// then polls as the library does (interval, slow_down) and prints the result: the ID token's
// claims and userinfo, or the error it ended with. Any deviation it detects makes it throw.
import * as client from 'openid-client';

const [issuer, clientId, secret, loginHint, bindingMessage] = process.argv.slice(2);
const config = await client.discovery(new URL(issuer), clientId, undefined,
  client.ClientSecretBasic(secret));

const started = await client.initiateBackchannelAuthentication(config, {
  scope: 'openid scope_all', login_hint: loginHint, binding_message: bindingMessage,
  acr_values: 'eidas1',
});
console.log(JSON.stringify({ started }));

try {
  const tokens = await client.pollBackchannelAuthenticationGrant(config, started);
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  console.log(JSON.stringify({ id_token_claims: claims, userinfo }));
} catch (error) {
  console.log(JSON.stringify({ error: error.error ?? error.code ?? String(error) }));
}
