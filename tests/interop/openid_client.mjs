// openid-client (an OpenID-certified relying-party library) against a live psc-idp.
//   node openid_client.mjs start  ISSUER CLIENT_ID SECRET REDIRECT_URI STATE_FILE
//   node openid_client.mjs finish ISSUER CLIENT_ID SECRET REDIRECT_URI STATE_FILE CALLBACK_URL
// Prints one JSON object. Any deviation openid-client detects makes it throw: the test fails.
import * as client from 'openid-client';
import { readFileSync, writeFileSync } from 'node:fs';

const [step, issuer, clientId, secret, redirectUri, stateFile, callbackUrl] = process.argv.slice(2);
const config = await client.discovery(new URL(issuer), clientId, undefined,
  client.ClientSecretBasic(secret));

if (step === 'start') {
  const checks = {
    verifier: client.randomPKCECodeVerifier(),
    nonce: client.randomNonce(),
    state: client.randomState(),
  };
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri, scope: 'openid scope_all', acr_values: 'eidas1',
    code_challenge: await client.calculatePKCECodeChallenge(checks.verifier),
    code_challenge_method: 'S256', nonce: checks.nonce, state: checks.state,
  });
  writeFileSync(stateFile, JSON.stringify(checks));
  console.log(JSON.stringify({ url: url.href }));
} else {
  const checks = JSON.parse(readFileSync(stateFile, 'utf8'));
  const result = {};
  const tokens = await client.authorizationCodeGrant(config, new URL(callbackUrl), {
    pkceCodeVerifier: checks.verifier, expectedNonce: checks.nonce,
    expectedState: checks.state, idTokenExpected: true,
  });
  const claims = tokens.claims();
  result.id_token_claims = claims;
  result.userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  result.refreshed_sub = refreshed.claims()?.sub;
  result.rotated = refreshed.refresh_token !== tokens.refresh_token;
  result.introspection = await client.tokenIntrospection(config, refreshed.access_token);
  await client.tokenRevocation(config, refreshed.refresh_token, { token_type_hint: 'refresh_token' });
  try {
    await client.refreshTokenGrant(config, refreshed.refresh_token);
    result.after_revocation = 'accepted';
  } catch (error) {
    result.after_revocation = error.error ?? error.code ?? String(error);
  }
  result.end_session_url = client.buildEndSessionUrl(config, {
    id_token_hint: refreshed.id_token ?? tokens.id_token,
    post_logout_redirect_uri: 'https://rp.example/logged-out', state: 'bye',
  }).href;
  console.log(JSON.stringify(result));
}
