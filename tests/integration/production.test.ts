/** Production mode: no start without a key, no dev tokens, only properly signed tokens get in. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { describe, it } from "node:test";
import { SignJWT } from "jose";
import { io } from "socket.io-client";
import { RawClient, startServer } from "../support/server";

const SECRET = "a-production-secret-that-is-long-enough-123";

describe("production mode", () => {
	it("refuses to start without a JWT secret or JWKS", () => {
		const run = spawnSync(process.execPath, ["--import", "tsx", path.resolve(__dirname, "../../server.ts")], {
			env: { ...process.env, PARLEY_MODE: "production", PARLEY_JWT_SECRET: "", PARLEY_JWKS_URL: "" },
			encoding: "utf8",
			timeout: 20_000,
		});
		assert.equal(run.status, 2);
		assert.match(run.stderr, /PARLEY_JWT_SECRET or PARLEY_JWKS_URL/);
	});

	it("refuses WebSocket upgrades from browser origins it was not configured for", async () => {
		const server = await startServer({ PARLEY_MODE: "production", PARLEY_JWT_SECRET: SECRET, PARLEY_CORS_ORIGINS: "https://market.example" });
		try {
			const token = await new SignJWT({ role: "user" }).setProtectedHeader({ alg: "HS256" }).setSubject("pat").setExpirationTime("1h").sign(new TextEncoder().encode(SECRET));
			const connect = (origin: string) =>
				new Promise<void>((resolve, reject) => {
					const socket = io(server.url, { auth: { token, deviceId: "d" }, transports: ["websocket"], reconnection: false, extraHeaders: { origin } });
					socket.once("connect", () => (socket.close(), resolve()));
					socket.once("connect_error", (err) => (socket.close(), reject(err)));
				});
			await connect("https://market.example");
			await assert.rejects(connect("https://evil.example"));
		} finally {
			await server.stop();
		}
	});

	it("serves no dev tokens and accepts only tokens signed with the configured secret", async () => {
		const server = await startServer({ PARLEY_MODE: "production", PARLEY_JWT_SECRET: SECRET });
		try {
			const res = await fetch(`${server.url}/api/dev/token`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"userId":"x"}' });
			assert.equal(res.status, 404);
			const sign = (secret: string) =>
				new SignJWT({ name: "Pat", role: "user" }).setProtectedHeader({ alg: "HS256" }).setSubject("pat").setExpirationTime("1h").sign(new TextEncoder().encode(secret));
			const client = await RawClient.connect(server.url, await sign(SECRET), "d1");
			const inbox = await client.call("conversations.list", {});
			assert.deepEqual(inbox.items, []);
			client.close();
			await assert.rejects(RawClient.connect(server.url, await sign("parley-development-secret-do-not-use-in-production"), "d2"), /UNAUTHORIZED/);
			const forever = await new SignJWT({ role: "user" }).setProtectedHeader({ alg: "HS256" }).setSubject("pat").sign(new TextEncoder().encode(SECRET));
			await assert.rejects(RawClient.connect(server.url, forever, "d3"), /UNAUTHORIZED/, "production requires exp");
		} finally {
			await server.stop();
		}
	});
});
