// HS256 JSON Web Tokens minted with node's crypto.
import { createHmac } from 'node:crypto';

// At least 32 bytes: the server refuses shorter HS256 secrets (RFC 7518, 3.2).
export const JWT_SECRET = 'e2e-secret-at-least-32-bytes-long!';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/** Sign arbitrary claims with HS256. */
export function signJwt(claims, secret = JWT_SECRET, header = { alg: 'HS256', typ: 'JWT' }) {
  const head = b64url(JSON.stringify(header));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest();
  return `${head}.${body}.${b64url(sig)}`;
}

/** A valid token for `sub` with `groups`, expiring in an hour unless `exp` is given. */
export function token(sub, groups = [], { exp, secret, extra } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return signJwt({ sub, groups, iat: now, exp: exp ?? now + 3600, ...(extra || {}) }, secret ?? JWT_SECRET);
}

/** Same claims, but signed with another key (bad signature). */
export function forgedToken(sub, groups = []) {
  return token(sub, groups, { secret: 'not-the-e2e-secret' });
}

/** Correctly signed, but expired an hour ago. */
export function expiredToken(sub, groups = []) {
  return token(sub, groups, { exp: Math.floor(Date.now() / 1000) - 3600 });
}
