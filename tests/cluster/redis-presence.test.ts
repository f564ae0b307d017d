/**
 * Presence and rate limits shared through a real redis-server, as several gateway
 * nodes see them: online/offline announced exactly once, a node that dies takes its
 * users offline within its heartbeat TTL, and Redis losing everything heals by itself.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type Redis from "ioredis";
import { RedisPresence } from "../../lib/presence/redis-presence";
import type { SessionInfo } from "../../lib/presence/presence-registry";
import { createRedis } from "../../lib/redis";
import { RedisTokenBuckets } from "../../lib/redis-rate-limiter";
import { redisMissing, startRedis, type RedisHandle } from "../support/redis";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let run = 0;

describe("Redis presence and rate limits", () => {
	const missing = redisMissing();
	if (missing) {
		it("needs redis-server", { skip: missing }, () => undefined);
		return;
	}
	let server: RedisHandle;
	let admin: Redis;
	const opened: { close(): Promise<void> }[] = [];

	before(async () => {
		server = await startRedis();
		admin = createRedis(server.url);
	});
	after(async () => {
		for (const p of opened) await p.close();
		admin?.disconnect();
		await server?.stop();
	});

	/** A presence instance as one gateway process sees it; each test gets a key prefix of its own. */
	function nodes(count: number, nodeTtlMs?: number): { prefix: string; all: RedisPresence[] } {
		const prefix = `t${++run}:`;
		const all = Array.from({ length: count }, () => new RedisPresence({ url: server.url, keyPrefix: prefix, nodeTtlMs }));
		opened.push(...all);
		return { prefix, all };
	}
	const session = (userId: string, sessionId: string, nodeID: string, deviceId = "phone"): SessionInfo => ({ userId, sessionId, nodeID, deviceId });
	const ids = (list: SessionInfo[]) => list.map((s) => `${s.userId}/${s.sessionId}@${s.nodeID}:${s.deviceId}`).sort();

	it("two nodes share one view; online and offline follow a user's devices", async () => {
		const { all: [a, b] } = nodes(2);
		await a!.open();
		assert.deepEqual(await b!.states(["bea"]), [{ userId: "bea", online: false, lastSeenAt: null }]);

		assert.deepEqual(await a!.add(session("bea", "s1", "gw-a", "phone")), { cameOnline: true });
		assert.deepEqual(await b!.add(session("bea", "s2", "gw-b", "laptop")), { cameOnline: false }, "second device: already online");
		assert.deepEqual(ids(await b!.sessionsOf(["bea", "sam"])), ["bea/s1@gw-a:phone", "bea/s2@gw-b:laptop"]);
		assert.deepEqual(await a!.states(["bea"]), [{ userId: "bea", online: true, lastSeenAt: null }]);

		assert.equal((await a!.remove(session("bea", "s1", "gw-a"))).wentOffline, false, "the laptop is still there");
		const last = await b!.remove(session("bea", "s2", "gw-b"));
		assert.equal(last.wentOffline, true);
		assert.equal((await b!.remove(session("bea", "s2", "gw-b"))).wentOffline, false, "removing twice announces nothing");
		assert.deepEqual(await a!.states(["bea"]), [{ userId: "bea", online: false, lastSeenAt: last.lastSeenAt }]);
		assert.deepEqual(await a!.sessionsOf(["bea"]), []);
		assert.ok((await admin.ttl(`t${run}:seen:bea`)) > 29 * 86_400, "last seen is kept for 30 days");
	});

	it("concurrent connects and disconnects from two nodes announce exactly once", async () => {
		const { all: [a, b] } = nodes(2);
		const sessions = Array.from({ length: 50 }, (_, i) => session("cai", `c${i}`, i % 2 ? "gw-a" : "gw-b", `d${i}`));
		const added = await Promise.all(sessions.map((s, i) => (i % 2 ? a! : b!).add(s)));
		assert.equal(added.filter((r) => r.cameOnline).length, 1, "one cameOnline for 50 connects");
		assert.equal((await a!.sessionsOf(["cai"])).length, 50);
		const removed = await Promise.all(sessions.map((s, i) => (i % 2 ? b! : a!).remove(s)));
		assert.equal(removed.filter((r) => r.wentOffline).length, 1, "one wentOffline for 50 disconnects");
		assert.equal((await b!.states(["cai"]))[0]!.online, false);
	});

	it("a node that stops heartbeating takes its users offline; sweeping it is exactly once and leaves nothing", async () => {
		const { prefix, all: [a, b] } = nodes(2, 300);
		// gw-live keeps beating; gw-dead and gw-dead2 beat once and then are kill -9'd.
		await a!.heartbeat("gw-live");
		const beat = setInterval(() => a!.heartbeat("gw-live").catch(() => undefined), 80);
		try {
			await b!.heartbeat("gw-dead");
			await b!.heartbeat("gw-dead2");
			await b!.add(session("solo", "x1", "gw-dead"));
			await b!.add(session("both", "x2", "gw-dead"));
			await a!.add(session("both", "x3", "gw-live", "laptop"));
			await b!.add(session("twice", "x4", "gw-dead"));
			await b!.add(session("twice", "x5", "gw-dead2"));
			assert.equal((await a!.sessionsOf(["solo", "both", "twice"])).length, 5);

			await sleep(450);
			// Before any sweep: the dead nodes' sessions are gone from every view.
			assert.deepEqual(ids(await a!.sessionsOf(["solo", "both", "twice"])), ["both/x3@gw-live:laptop"]);
			assert.deepEqual(
				(await b!.states(["solo", "both", "twice"])).map((s) => s.online),
				[false, true, false],
			);

			const [fromA, fromB] = await Promise.all([a!.sweep(), b!.sweep()]);
			const offline = [...fromA, ...fromB];
			assert.deepEqual(offline.map((o) => o.userId).sort(), ["solo", "twice"], "each went offline once, across both sweepers");
			assert.deepEqual(await a!.sweep(), [], "nothing left to sweep");
			const solo = offline.find((o) => o.userId === "solo")!;
			assert.deepEqual(await a!.states(["solo"]), [{ userId: "solo", online: false, lastSeenAt: solo.lastSeenAt }]);
			assert.deepEqual(ids(await b!.sessionsOf(["both"])), ["both/x3@gw-live:laptop"], "a session on a live node stays");

			const keys = await admin.keys(`${prefix}*`);
			assert.deepEqual(keys.filter((k) => k.includes("gw-dead")), [], `no key of a dead node is left: ${keys.join(", ")}`);
			assert.deepEqual(await admin.smembers(`${prefix}nodes`), ["gw-live"]);
			assert.deepEqual(await admin.hkeys(`${prefix}user:both`), ["x3"]);
			assert.equal(await admin.exists(`${prefix}user:solo`, `${prefix}user:twice`), 0);

			// The "dead" node was only paused: it learns it was forgotten and brings its users back.
			assert.deepEqual(await b!.heartbeat("gw-dead"), { known: false });
			assert.deepEqual(await b!.restore("gw-dead", [session("solo", "x1", "gw-dead"), session("both", "x2", "gw-dead")]), { cameOnline: ["solo"] });
			assert.deepEqual(await b!.heartbeat("gw-dead"), { known: true });
			assert.deepEqual(ids(await a!.sessionsOf(["solo", "both"])), ["both/x2@gw-dead:phone", "both/x3@gw-live:laptop", "solo/x1@gw-dead:phone"]);
		} finally {
			clearInterval(beat);
		}
	});

	it("a big node restores and is swept in batches, each user once", async () => {
		const { prefix, all: [a, b] } = nodes(2, 300);
		assert.deepEqual(await a!.heartbeat("gw-big"), { known: false });
		const many = Array.from({ length: 1200 }, (_, i) => session(`u${i % 1100}`, `s${i}`, "gw-big"));
		assert.equal((await a!.restore("gw-big", many)).cameOnline.length, 1100, "100 users have two sessions, spread over chunks");
		assert.equal((await b!.sessionsOf([...new Set(many.map((s) => s.userId))])).length, 1200);
		await sleep(400);
		const [fromA, fromB] = await Promise.all([a!.sweep(), b!.sweep()]);
		assert.equal(new Set([...fromA, ...fromB].map((o) => o.userId)).size, 1100);
		assert.equal(fromA.length + fromB.length, 1100);
		const left = (await admin.keys(`${prefix}*`)).filter((k) => !k.startsWith(`${prefix}seen:`));
		assert.deepEqual(left, [], "nothing is left but last-seen keys");
	});

	it("a node declared dead and then adding a session is asked to restore the rest", async () => {
		const { all: [a] } = nodes(1, 200);
		await a!.heartbeat("gw-slow");
		await a!.add(session("dee", "d1", "gw-slow"));
		await sleep(300); // a GC pause longer than the TTL
		assert.deepEqual(await a!.add(session("eve", "e1", "gw-slow")), { cameOnline: true });
		assert.deepEqual(await a!.heartbeat("gw-slow"), { known: false }, "its key came back by an add, not a heartbeat");
	});

	it("Redis restarted with no data: heartbeat says unknown, restore brings everyone back", async () => {
		const { all: [a] } = nodes(1, 5000);
		assert.deepEqual(await a!.heartbeat("gw-r"), { known: false }, "first beat");
		assert.deepEqual(await a!.heartbeat("gw-r"), { known: true });
		const mine = [session("fay", "f1", "gw-r"), session("fay", "f2", "gw-r", "tablet"), session("gus", "g1", "gw-r")];
		for (const s of mine) await a!.add(s);

		await server.restart();
		const beat = await eventually(() => a!.heartbeat("gw-r"));
		assert.deepEqual(beat, { known: false });
		assert.deepEqual(await a!.sessionsOf(["fay", "gus"]), [], "Redis lost everything");
		assert.deepEqual((await a!.restore("gw-r", mine)).cameOnline.sort(), ["fay", "gus"]);
		assert.deepEqual(ids(await a!.sessionsOf(["fay", "gus"])), ids(mine));
		assert.deepEqual((await a!.restore("gw-r", mine)).cameOnline, [], "restoring again announces nothing");
	});

	it("a node restarting under its old id drops the dead process's sessions at once; its registry view lists what it holds", async () => {
		const { prefix, all: [a, b] } = nodes(2, 60_000);
		await a!.heartbeat("gw-re");
		await a!.add(session("ray", "r1", "gw-re"));
		await a!.add(session("ray", "r2", "gw-re", "laptop"));
		await b!.add(session("ray", "r3", "gw-other", "tablet"));
		await a!.add(session("sue", "u1", "gw-re"));
		assert.equal((await a!.sessionsOfNode("gw-re")).length, 3);
		// kill -9 and an immediate restart: the liveness key (TTL 60 s) is still there.
		const gone = await a!.forgetNode("gw-re");
		assert.deepEqual(gone.map((g) => g.userId), ["sue"], "ray is still online on another node");
		assert.deepEqual(ids(await b!.sessionsOf(["ray", "sue"])), ["ray/r3@gw-other:tablet"]);
		assert.deepEqual(await a!.sessionsOfNode("gw-re"), []);
		assert.deepEqual((await admin.keys(`${prefix}*gw-re*`)), [], "nothing of the old process is left");
		assert.deepEqual(await a!.heartbeat("gw-re"), { known: false }, "the new process starts from nothing");
	});

	it("scripts still run after Redis forgot them (NOSCRIPT)", async () => {
		const { all: [a] } = nodes(1);
		await a!.add(session("hal", "h1", "gw-s"));
		await admin.script("FLUSH");
		assert.equal((await a!.sessionsOf(["hal"])).length, 1);
		assert.equal((await a!.remove(session("hal", "h1", "gw-s"))).wentOffline, true);
	});

	it("calls during an outage fail fast or succeed after the reconnect, never hang", async () => {
		const { all: [a] } = nodes(1);
		await a!.add(session("ida", "i1", "gw-o"));

		// Brief outage (0.3 s): calls wait in the offline queue.
		const brief = server.restart(300);
		await sleep(50);
		const during = await Promise.all(([a!.states(["ida"]), a!.add(session("ida", "i2", "gw-o")), a!.heartbeat("gw-o")] as Promise<unknown>[]).map(timed));
		await brief;
		for (const r of during) assert.ok(!r.error && r.ms < 2000, `went through after the reconnect, in ${r.ms} ms (${r.error})`);

		// Long outage (4 s): calls fail within ~2 s.
		const long = server.restart(4000);
		await sleep(50);
		const failed = await Promise.all(([a!.sessionsOf(["ida"]), a!.heartbeat("gw-o")] as Promise<unknown>[]).map(timed));
		for (const r of failed) {
			assert.ok(r.error, "Redis is down: the call fails");
			assert.ok(r.ms < 2600, `failed in ${r.ms} ms`);
		}
		await long;
		assert.deepEqual(await eventually(() => a!.heartbeat("gw-o")), { known: false });
		assert.deepEqual(await a!.add(session("ida", "i3", "gw-o")), { cameOnline: true });
	});

	it("rate limit: a burst, then a wait, refilled over time, one bucket for all nodes", async () => {
		const one = createRedis(server.url);
		const two = createRedis(server.url);
		try {
			await Promise.all([one.ping(), two.ping()]);
			const prefix = `t${++run}:rl:`;
			const a = new RedisTokenBuckets(one, 10, 3, prefix);
			const b = new RedisTokenBuckets(two, 10, 3, prefix);
			assert.deepEqual([await a.take("jo"), await b.take("jo"), await a.take("jo")], [0, 0, 0], "burst of 3");
			const wait = await b.take("jo");
			assert.ok(wait > 0 && wait <= 100, `refused with a wait of ${wait} ms`);
			assert.equal(await a.take("kim"), 0, "another user has a bucket of their own");
			const pttl = await admin.pttl(`${prefix}jo`);
			assert.ok(pttl > 0, `the bucket expires (PTTL ${pttl})`);

			await sleep(wait + 20);
			assert.equal(await a.take("jo"), 0, "a token came back");
			await sleep(400);
			const refilled = [await b.take("jo"), await a.take("jo"), await b.take("jo"), await a.take("jo")];
			assert.deepEqual(refilled.map((w) => w > 0), [false, false, false, true], "refilled up to the burst, not beyond");
		} finally {
			one.disconnect();
			two.disconnect();
		}
	});

	it("rate limit fails open when Redis is unreachable", async () => {
		const dead = createRedis("redis://127.0.0.1:1");
		const errors: Error[] = [];
		try {
			const limiter = new RedisTokenBuckets(dead, 1, 1, "x:", (e) => errors.push(e));
			const started = Date.now();
			for (let i = 0; i < 5; i++) assert.equal(await limiter.take("lee"), 0);
			assert.ok(Date.now() - started < 100, "without waiting for Redis");
			assert.equal(errors.length, 1, "reported once, not per call");
		} finally {
			dead.disconnect();
		}
	});
});

/** Runs a call and reports how long it took to settle and whether it failed. */
async function timed(p: Promise<unknown>): Promise<{ ms: number; error?: unknown }> {
	const started = Date.now();
	try {
		await p;
		return { ms: Date.now() - started };
	} catch (error) {
		return { ms: Date.now() - started, error };
	}
}

/** Retries while Redis reconnects: each try is bounded by the client's command timeout. */
async function eventually<T>(call: () => Promise<T>, ms = 10_000): Promise<T> {
	for (const deadline = Date.now() + ms; ; await sleep(100)) {
		try {
			return await call();
		} catch (err) {
			if (Date.now() > deadline) throw err;
		}
	}
}
