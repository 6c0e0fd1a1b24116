// A real OpenID Connect provider for the social-login tests (oidc-provider,
// development interactions: any login name, any password).
//
//   node provider.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI
//
// The login name is the subject. Its email is <name>@example.com, asserted
// as verified, except for names starting with "unverified.": those have
// <rest>@example.com, not verified. Prints "listening" when ready.
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
  }],
  pkce: { required: () => true },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  // The ID token carries the claims itself (no userinfo call needed).
  conformIdTokenClaims: false,
  cookies: { keys: ['a-test-only-cookie-key'] },
  async findAccount(ctx, id) {
    const unverified = id.startsWith('unverified.');
    const local = unverified ? id.slice('unverified.'.length) : id;
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: `${local}@example.com`, email_verified: !unverified, name: local };
      },
    };
  },
});
provider.proxy = false;
provider.listen(Number(port), '127.0.0.1', () => console.log('listening'));
