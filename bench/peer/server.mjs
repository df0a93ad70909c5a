// oidc-provider (the Node reference OpenID provider) configured like psc-idp for the
// benchmark: RS256 ID tokens, RS256 JWT access tokens, rotating refresh tokens, in-memory
// store. Codes and tokens for the workloads are minted through its own internal API.
//   node server.mjs PORT MINT_CODES CODES_FILE [jwt|opaque]
// oidc-provider refuses to introspect JWT access tokens and to accept resource-bound JWT access
// tokens at userinfo, so the introspection and userinfo workloads use its opaque tokens.
import Provider from 'oidc-provider';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';

const [port, mint, out] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4]];
const jwtAccessTokens = (process.argv[5] ?? 'jwt') === 'jwt';

// A plain Map store: the development adapter bundled with oidc-provider is an LRU cache of
// 1,000 entries, too small for codes minted before a run.
const stores = new Map();
class MapAdapter {
  constructor(name) {
    if (!stores.has(name)) stores.set(name, new Map());
    this.store = stores.get(name);
    this.grants = stores.get('grants') ?? new Map();
    stores.set('grants', this.grants);
  }
  async upsert(id, payload) {
    this.store.set(id, payload);
    if (payload.grantId) {
      const ids = this.grants.get(payload.grantId) ?? [];
      ids.push([this.store, id]);
      this.grants.set(payload.grantId, ids);
    }
  }
  async find(id) { return this.store.get(id); }
  async findByUid(uid) { for (const v of this.store.values()) if (v.uid === uid) return v; return undefined; }
  async findByUserCode(code) { for (const v of this.store.values()) if (v.userCode === code) return v; return undefined; }
  async consume(id) { const v = this.store.get(id); if (v) v.consumed = Math.floor(Date.now() / 1000); }
  async destroy(id) { this.store.delete(id); }
  async revokeByGrantId(grantId) {
    for (const [store, id] of this.grants.get(grantId) ?? []) store.delete(id);
    this.grants.delete(grantId);
  }
}
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: 'bench' };
const RESOURCE = 'https://api.bench.example';
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  adapter: MapAdapter,
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
      enabled: jwtAccessTokens,
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
  if (jwtAccessTokens) grant.addResourceScope(RESOURCE, 'openid');
  const grantId = await grant.save();
  const code = new provider.AuthorizationCode({
    accountId: '899700245667', clientId: 'bench', grantId, scope: 'openid',
    redirectUri: 'https://rp.example/cb', acr: 'eidas1', authTime: Math.floor(Date.now() / 1000),
    ...(jwtAccessTokens ? { resource: RESOURCE } : {}),
  });
  return code.save();
}

const codes = [];
for (let i = 0; i < mint; i += 1) codes.push(await mintCode());
writeFileSync(out, codes.join('\n') + '\n');
provider.listen(port, '127.0.0.1', () => console.log(`peer listening on ${issuer}`));
