/** Plain rules, tested without a broker. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, loadConfig } from "../../config";
import { Batcher } from "../../lib/batcher";
import { markedToHtml, queryTerms } from "../../lib/search/highlight";
import { TokenBuckets } from "../../lib/rate-limiter";
import { unreadCount } from "../../lib/unread";

describe("unread", () => {
	it("is what follows my read mark, minus what I sent there", () => {
		assert.equal(unreadCount(10, { read: 4, sentCount: 3, sentUpToRead: 1 }), 4);
		assert.equal(unreadCount(10, { read: 10, sentCount: 3, sentUpToRead: 3 }), 0);
		assert.equal(unreadCount(0, { read: 0, sentCount: 0, sentUpToRead: 0 }), 0);
	});
});

describe("Batcher", () => {
	it("collects concurrent submissions into one flush, in order, and fails only the bad item", async () => {
		const flushes: number[][] = [];
		const batcher = new Batcher<number, number>(
			(items) => {
				flushes.push(items);
				return items.map((i) => (i === 3 ? new Error("bad") : i * 10));
			},
			{ delayMs: 0, maxItems: 100 },
		);
		const results = await Promise.allSettled([1, 2, 3, 4].map((i) => batcher.submit(i)));
		assert.deepEqual(flushes, [[1, 2, 3, 4]]);
		assert.deepEqual(results.map((r) => (r.status === "fulfilled" ? r.value : "rejected")), [10, 20, "rejected", 40]);
	});

	it("never runs two flushes at once and respects maxItems", async () => {
		let running = 0;
		let maxRunning = 0;
		const sizes: number[] = [];
		const batcher = new Batcher<number, void>(
			async (items) => {
				running++;
				maxRunning = Math.max(maxRunning, running);
				sizes.push(items.length);
				await new Promise((r) => setTimeout(r, 5));
				running--;
				return items.map(() => undefined);
			},
			{ delayMs: 0, maxItems: 3 },
		);
		await Promise.all(Array.from({ length: 10 }, (_, i) => batcher.submit(i)));
		assert.equal(maxRunning, 1);
		assert.ok(sizes.every((s) => s <= 3));
		assert.equal(sizes.reduce((a, b) => a + b, 0), 10);
	});
});

describe("TokenBuckets", () => {
	it("allows the burst, then asks to wait, then refills", () => {
		const buckets = new TokenBuckets(10, 3);
		assert.deepEqual([0, 0, 0].map(() => buckets.take("u", 1000)), [0, 0, 0]);
		assert.ok(buckets.take("u", 1000) > 0);
		assert.equal(buckets.take("u", 1100), 0);
		assert.equal(buckets.take("other", 1000), 0);
	});
});

describe("search text handling", () => {
	it("escapes message HTML and marks only the matches", () => {
		assert.equal(markedToHtml("a <b> \uFDD0Café\uFDD1 & co"), "a &lt;b&gt; <mark>Café</mark> &amp; co");
	});
	it("turns a user query into plain words, whatever syntax it contains", () => {
		assert.deepEqual(queryTerms('  The "blue" BIKE* OR (iban) NEAR/2 '), ["the", "blue", "bike", "or", "iban", "near", "2"]);
		assert.deepEqual(queryTerms("***"), []);
	});
});

describe("config", () => {
	it("defaults to development on port 3000 with dev tokens", () => {
		const c = loadConfig({});
		assert.equal(c.mode, "development");
		assert.equal(c.port, 3000);
		assert.equal(c.devTokens, true);
	});
	it("refuses production without a secret or JWKS, and never serves dev tokens there", () => {
		assert.throws(() => loadConfig({ PARLEY_MODE: "production" }), ConfigError);
		const c = loadConfig({ PARLEY_MODE: "production", PARLEY_JWT_SECRET: "x".repeat(40) });
		assert.equal(c.devTokens, false);
		assert.equal(c.auth.usingDevSecret, false);
	});
	it("a cluster node runs exactly one role, on the networked engines; roles need the cluster profile", () => {
		assert.throws(() => loadConfig({ PARLEY_PROFILE: "cluster" }), /PARLEY_ROLES/);
		assert.throws(() => loadConfig({ PARLEY_PROFILE: "cluster", PARLEY_ROLES: "gateway,core" }), /one role per node/);
		assert.throws(() => loadConfig({ PARLEY_PROFILE: "cluster", PARLEY_ROLES: "edge" }), /PARLEY_ROLES/);
		assert.throws(() => loadConfig({ PARLEY_PROFILE: "cluster", PARLEY_ROLES: "core", PARLEY_STORE: "sqlite" }), /cassandra/);
		assert.throws(() => loadConfig({ PARLEY_ROLES: "core" }), /PARLEY_PROFILE=cluster/);
		const core = loadConfig({ PARLEY_PROFILE: "cluster", PARLEY_ROLES: "core" });
		assert.deepEqual([core.roles, core.store.engine, core.search.engine], [["core"], "cassandra", "elasticsearch"]);
	});
	it("rejects malformed values with the variable's name", () => {
		assert.throws(() => loadConfig({ PORT: "abc" }), /PORT/);
		assert.throws(() => loadConfig({ PARLEY_MODE: "prod" }), /PARLEY_MODE/);
		assert.throws(() => loadConfig({ PARLEY_MODE: "production", PARLEY_JWT_SECRET: "short" }), /32/);
		assert.throws(() => loadConfig({ PORT: "0x3904" }), /PORT must be an integer/, "hex is not a port number");
		assert.throws(() => loadConfig({ PORT: "3e3" }), /PORT/);
		assert.throws(() => loadConfig({ PARLEY_JWKS_URL: "not-a-url" }), /PARLEY_JWKS_URL must be a https: or http: URL/);
		assert.throws(() => loadConfig({ PARLEY_DATA_DIR: __filename }), /PARLEY_DATA_DIR must be a directory/);
		assert.throws(() => loadConfig({ PARLEY_FCM_SERVICE_ACCOUNT: "/nonexistent/key.json" }), /PARLEY_FCM_SERVICE_ACCOUNT must name a readable file/);
		assert.throws(() => loadConfig({ PARLEY_FCM_RELAY_URL: "http://127.0.0.1:1" }), /PARLEY_FCM_RELAY_URL must be a https: URL/);
	});

	it("serves dev tokens only in development and only with a secret to sign them", () => {
		assert.equal(loadConfig({}).devTokens, true);
		assert.equal(loadConfig({ PARLEY_JWKS_URL: "https://auth.example/jwks" }).devTokens, false, "a JWKS alone cannot sign HS256 tokens");
		assert.equal(loadConfig({ PARLEY_JWKS_URL: "https://auth.example/jwks", PARLEY_JWT_SECRET: "s" }).devTokens, true);
		assert.equal(loadConfig({ PARLEY_MODE: "production", PARLEY_JWT_SECRET: "x".repeat(32) }).devTokens, false);
	});
});
