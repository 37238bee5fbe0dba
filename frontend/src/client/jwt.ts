/** Minimal JWT payload reader (no verification: the server verifies; the client only needs `exp` and `sub`). */
export interface JwtClaims {
  sub?: string
  exp?: number
  [claim: string]: unknown
}

function base64UrlDecode(segment: string): string {
  let b64 = segment.replace(/-/g, '+').replace(/_/g, '/')
  const pad = b64.length % 4
  if (pad === 2) b64 += '=='
  else if (pad === 3) b64 += '='
  else if (pad === 1) throw new Error('bad base64url')
  const binary = atob(b64)
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return new TextDecoder().decode(bytes)
}

/** Returns the JWT's payload claims, or null when the token is not a readable JWT. */
export function decodeJwt(token: string | null | undefined): JwtClaims | null {
  if (!token) return null
  const parts = token.split('.')
  if (parts.length < 2) return null
  try {
    const claims = JSON.parse(base64UrlDecode(parts[1]!))
    return claims && typeof claims === 'object' && !Array.isArray(claims) ? (claims as JwtClaims) : null
  } catch {
    return null
  }
}

/** Expiry of the token in epoch milliseconds, or null when it has no (numeric) `exp`. */
export function tokenExpiry(token: string | null | undefined): number | null {
  const exp = decodeJwt(token)?.exp
  return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : null
}

/** The token's subject (user id), or null. */
export function tokenSubject(token: string | null | undefined): string | null {
  const sub = decodeJwt(token)?.sub
  return typeof sub === 'string' ? sub : null
}
