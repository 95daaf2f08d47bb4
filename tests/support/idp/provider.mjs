// The OpenID provider the sign-in test starts: the npm package oidc-provider with its own login form
// (devInteractions) and two test users, no personal data. Settings from the environment:
// IDP_PORT, IDP_CLIENT_ID, IDP_CLIENT_SECRET, IDP_REDIRECT_URI, IDP_POST_LOGOUT_URI, IDP_ID_TOKEN_TTL_S.
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const env = process.env;
const port = Number(env.IDP_PORT);
const users = {
  'chef-arsta': { name: 'Testchef Årsta', groups: ['vk-chef-vc01'] },
  'analytiker-uppsala': { name: 'Testanalytiker Uppsala', groups: ['vk-analys-uppsala'] },
};
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: env.IDP_CLIENT_ID,
    client_secret: env.IDP_CLIENT_SECRET,
    redirect_uris: [env.IDP_REDIRECT_URI],
    post_logout_redirect_uris: [env.IDP_POST_LOGOUT_URI],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  pkce: { required: () => true },
  jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'test-key', use: 'sig', alg: 'RS256' }] },
  claims: { openid: ['sub'], profile: ['name', 'preferred_username'], groups: ['groups'] },
  conformIdTokenClaims: false,
  ttl: { IdToken: Number(env.IDP_ID_TOKEN_TTL_S || 600) },
  cookies: { keys: ['test-only-cookie-key-0123456789'] },
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  async findAccount(ctx, id) {
    const user = users[id];
    if (!user) return undefined;
    return { accountId: id, claims: () => ({ sub: id, preferred_username: id, name: user.name, groups: user.groups }) };
  },
});
provider.listen(port, '127.0.0.1', () => console.log('ready'));
