/**
 * Token verification for the Socket.IO handshake (and dev token issue).
 * HS256 with a shared secret, or RS256 keys from a JWKS endpoint in production.
 */
import { SignJWT, createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTPayload } from "jose";
import type { AuthUser, Role } from "../contract";
import type { Config } from "../config";
import { unauthorized } from "./errors";

const ROLES: readonly Role[] = ["user", "agent", "admin"];
const USER_ID = /^[A-Za-z0-9_.:@-]{1,128}$/;

export function isValidUserId(id: unknown): id is string {
	return typeof id === "string" && USER_ID.test(id);
}

export class TokenVerifier {
	private readonly secret?: Uint8Array;
	private readonly jwks?: ReturnType<typeof createRemoteJWKSet>;

	constructor(
		private readonly auth: Config["auth"],
		/** Production requires `exp`: a token that never expires cannot be revoked by waiting. */
		private readonly requireExpiry = false,
	) {
		if (auth.jwksUrl) this.jwks = createRemoteJWKSet(new URL(auth.jwksUrl));
		if (auth.jwtSecret) this.secret = new TextEncoder().encode(auth.jwtSecret);
	}

	async verify(token: unknown): Promise<AuthUser> {
		if (typeof token !== "string" || token.length === 0 || token.length > 8192) throw unauthorized("Missing token");
		let payload: JWTPayload;
		try {
			const options = { issuer: this.auth.issuer, audience: this.auth.audience, requiredClaims: this.requireExpiry ? ["exp"] : [] };
			// The header picks the key: RS256 from the JWKS, HS256 with the shared secret; anything else is refused.
			const { alg } = decodeProtectedHeader(token);
			if (alg === "RS256" && this.jwks) payload = (await jwtVerify(token, this.jwks, { ...options, algorithms: ["RS256"] })).payload;
			else if (alg === "HS256" && this.secret) payload = (await jwtVerify(token, this.secret, { ...options, algorithms: ["HS256"] })).payload;
			else throw new Error(`algorithm ${String(alg)} not accepted`);
		} catch (err) {
			const code = (err as { code?: string }).code;
			if (code === "ERR_JWT_EXPIRED") throw unauthorized("Token expired");
			if (code === "ERR_JWT_CLAIM_VALIDATION_FAILED" && (err as { claim?: string }).claim === "exp") throw unauthorized("Token has no exp claim (required in production)");
			throw unauthorized("Invalid token");
		}
		return userFromClaims(payload);
	}

	/** Development only: the gateway refuses to expose this in production. */
	async issue(user: { userId: string; name: string; role: Role; teams?: string[] }, ttlSeconds = 24 * 3600): Promise<string> {
		if (!this.secret) throw new Error("no HS256 secret configured");
		return new SignJWT({ name: user.name, role: user.role, teams: user.teams ?? [] })
			.setProtectedHeader({ alg: "HS256" })
			.setSubject(user.userId)
			.setIssuedAt()
			.setExpirationTime(`${ttlSeconds}s`)
			.setIssuer(this.auth.issuer ?? "parley")
			.setAudience(this.auth.audience ?? "parley")
			.sign(this.secret);
	}
}

function userFromClaims(claims: JWTPayload): AuthUser {
	const role = (claims.role ?? "user") as Role;
	if (!isValidUserId(claims.sub) || !ROLES.includes(role)) throw unauthorized("Token claims are invalid");
	const name = typeof claims.name === "string" && claims.name.length <= 200 ? claims.name : claims.sub;
	const teams = Array.isArray(claims.teams) ? claims.teams.filter((t): t is string => typeof t === "string") : [];
	return { id: claims.sub, name, role, teams };
}
