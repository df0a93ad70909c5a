// oidc-provider (the Node reference OpenID provider) configured like psc-idp for the
// benchmark: RS256 ID tokens, RS256 JWT access tokens, rotating refresh tokens, in-memory
// store. Codes and tokens for the workloads are minted through its own internal API.
//   node server.mjs PORT MINT_CODES CODES_FILE
import Provider from 'oidc-provider';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';

const [port, mint, out] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4]];
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: 'bench' };
const RESOURCE = 'https://api.bench.example';
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'bench', client_secret: 'bench-secret-0123456789',
    redirect_uris: ['https://rp.example/cb'], response_types: ['code'],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [jwk] },
  findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id, preferred_username: id }) }),
  claims: { openid: ['sub'], profile: ['preferred_username'] },
  pkce: { required: () => false },
  rotateRefreshToken: true,
  issueRefreshToken: () => true,
  ttl: { AccessToken: 120, AuthorizationCode: 600, IdToken: 120, RefreshToken: 1800, Grant: 86400 },
  features: {
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({ scope: 'openid', audience: 'bench',
        accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } }),
    },
  },
});

async function mintCode() {
  const grant = new provider.Grant({ accountId: '899700245667', clientId: 'bench' });
  grant.addOIDCScope('openid');
  grant.addResourceScope(RESOURCE, 'openid');
  const grantId = await grant.save();
  const code = new provider.AuthorizationCode({
    accountId: '899700245667', clientId: 'bench', grantId, scope: 'openid',
    redirectUri: 'https://rp.example/cb', acr: 'eidas1', authTime: Math.floor(Date.now() / 1000),
    resource: RESOURCE,
  });
  return code.save();
}

const codes = [];
for (let i = 0; i < mint; i += 1) codes.push(await mintCode());
writeFileSync(out, codes.join('\n') + '\n');
provider.listen(port, '127.0.0.1', () => console.log(`peer listening on ${issuer}`));
