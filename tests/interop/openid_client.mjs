// openid-client (an OpenID-certified relying-party library) against a live psc-idp.
//   node openid_client.mjs start      ISSUER CLIENT_ID CREDENTIAL REDIRECT_URI STATE_FILE
//   node openid_client.mjs start-par  ISSUER CLIENT_ID CREDENTIAL REDIRECT_URI STATE_FILE
//   node openid_client.mjs finish     ISSUER CLIENT_ID CREDENTIAL REDIRECT_URI STATE_FILE CALLBACK_URL
//   node openid_client.mjs dpop-start / dpop-finish (same arguments): the code flow with
//     DPoP (RFC 9449): dpop_jkt in the authorization request, DPoP-bound tokens, userinfo;
//     dpop-par-start pushes that request first (PAR + DPoP + private_key_jwt: FAPI 2.0)
// CREDENTIAL: the client secret (client_secret_basic), or jwk:FILE, a private RSA JWK with its
// kid (private_key_jwt, RFC 7523). start-par pushes the request (RFC 9126) first.
// Prints one JSON object. Any deviation openid-client detects makes it throw: the test fails.
import * as client from 'openid-client';
import * as jose from 'jose';
import { readFileSync, writeFileSync } from 'node:fs';

const [step, issuer, clientId, credential, redirectUri, stateFile, callbackUrl] = process.argv.slice(2);

async function clientAuth() {
  if (!credential.startsWith('jwk:')) return client.ClientSecretBasic(credential);
  const jwk = JSON.parse(readFileSync(credential.slice(4), 'utf8'));
  const key = await crypto.subtle.importKey(
    'jwk', jwk, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['sign']);
  return client.PrivateKeyJwt({ key, kid: jwk.kid });
}

const config = await client.discovery(new URL(issuer), clientId, undefined, await clientAuth());

if (step === 'dpop-start' || step === 'dpop-par-start') {
  console.log(JSON.stringify(await dpopStart(step === 'dpop-par-start')));
} else if (step === 'dpop-finish') {
  console.log(JSON.stringify(await dpopFinish()));
} else if (step === 'start' || step === 'start-par') {
  const checks = {
    verifier: client.randomPKCECodeVerifier(),
    nonce: client.randomNonce(),
    state: client.randomState(),
  };
  const parameters = {
    redirect_uri: redirectUri, scope: 'openid scope_all', acr_values: 'eidas1',
    code_challenge: await client.calculatePKCECodeChallenge(checks.verifier),
    code_challenge_method: 'S256', nonce: checks.nonce, state: checks.state,
  };
  const url = step === 'start-par'
    ? await client.buildAuthorizationUrlWithPAR(config, parameters)
    : client.buildAuthorizationUrl(config, parameters);
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

// DPoP (RFC 9449). The key pair outlives the first process: exported to the state file.
async function dpopStart(pushed) { // pushed: through PAR (RFC 9126), as FAPI 2.0 asks
  const keyPair = await client.randomDPoPKeyPair('ES256', { extractable: true });
  const publicJwk = await jose.exportJWK(keyPair.publicKey);
  const jkt = await jose.calculateJwkThumbprint(publicJwk);
  const checks = {
    verifier: client.randomPKCECodeVerifier(), nonce: client.randomNonce(),
    state: client.randomState(), privateJwk: await jose.exportJWK(keyPair.privateKey),
    publicJwk,
  };
  const parameters = {
    redirect_uri: redirectUri, scope: 'openid scope_all', acr_values: 'eidas1',
    code_challenge: await client.calculatePKCECodeChallenge(checks.verifier),
    code_challenge_method: 'S256', nonce: checks.nonce, state: checks.state, dpop_jkt: jkt,
  };
  const url = pushed ? await client.buildAuthorizationUrlWithPAR(config, parameters)
    : client.buildAuthorizationUrl(config, parameters);
  writeFileSync(stateFile, JSON.stringify(checks));
  return { url: url.href, jkt };
}

async function dpopFinish() {
  const checks = JSON.parse(readFileSync(stateFile, 'utf8'));
  const keyPair = {
    privateKey: await jose.importJWK(checks.privateJwk, 'ES256'),
    publicKey: await jose.importJWK(checks.publicJwk, 'ES256', { extractable: true }),
  };
  const DPoP = client.getDPoPHandle(config, keyPair);
  const tokens = await client.authorizationCodeGrant(config, new URL(callbackUrl), {
    pkceCodeVerifier: checks.verifier, expectedNonce: checks.nonce,
    expectedState: checks.state, idTokenExpected: true,
  }, undefined, { DPoP });
  const claims = tokens.claims();
  const result = { token_type: tokens.token_type, sub: claims.sub };
  result.userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub, { DPoP });
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined,
    { DPoP });
  result.refreshed_token_type = refreshed.token_type;
  result.introspection = await client.tokenIntrospection(config, refreshed.access_token);
  try { // the bound token without its proof
    await client.fetchUserInfo(config, refreshed.access_token, claims.sub);
    result.without_proof = 'accepted';
  } catch (error) {
    result.without_proof = error.cause?.[0]?.parameters?.error ?? error.error ?? error.code
      ?? String(error);
  }
  return result;
}
