/**
 * Chaos: a steady stream of sends through a real cluster (2 gateways, 2 core
 * nodes, NATS, Redis, Cassandra, Elasticsearch) while a gateway is killed -9,
 * then a core node, then Redis restarts with its data gone. Every acked message
 * must be stored exactly once with dense seq, every device must converge on the
 * same ordered history, and presence must settle.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import Redis from "ioredis";
import { ParleyClient } from "../../client";
import type { Message } from "../../contract";
import { startCluster, type ClusterHandle } from "../../scripts/cluster-launcher";
import { enginesMissing } from "../support/engines";
import { RawClient, devToken, sleep, storedHistory } from "../support/server";

const PAIRS = 4;
const SEND_EVERY_MS = 60;
const SESSION_TTL_MS = 3000;

interface Pair {
	conversationId: string;
	buyer: ParleyClient;
	seller: ParleyClient;
	/** Everything the buyer asked to send, and what the server acked. */
	sent: string[];
	acked: Map<string, Message>;
}

describe("cluster chaos", async () => {
	const missing = await enginesMissing();
	if (missing) {
		it("needs Cassandra and Elasticsearch", { skip: missing }, () => undefined);
		return;
	}

	let cluster: ClusterHandle;
	const pairs: Pair[] = [];
	const clients: ParleyClient[] = [];
	/** What each device handed to the app ("message" events), in the order it did. */
	const shown = new Map<ParleyClient, Message[]>();

	before(async () => {
		cluster = await startCluster({
			gateways: 2,
			cores: 2,
			env: { PARLEY_SESSION_TTL_MS: String(SESSION_TTL_MS), PARLEY_CALLS_PER_SECOND: "10000", PARLEY_CALL_BURST: "10000" },
		});
	});

	after(async () => {
		for (const c of clients) c.close();
		await cluster?.stop();
	});

	it("kill -9 a gateway, then a core node, then restart Redis: no acked message lost or doubled, all devices converge", { timeout: 240_000 }, async () => {
		const urls = cluster.gateways.map((g) => g.url);
		const [gatewayA, gatewayB] = cluster.gateways;
		const newClient = async (userId: string, deviceId: string) => {
			const token = await devToken(urls[0]!, userId);
			const client = new ParleyClient({ url: urls, token, deviceId, reconnectDelayMs: 100, reconnectDelayMaxMs: 400, callTimeoutMs: 4000 });
			clients.push(client);
			const messages: Message[] = [];
			shown.set(client, messages);
			client.on("message", (m) => messages.push(m));
			await client.connect();
			return client;
		};

		for (let i = 0; i < PAIRS; i++) {
			const buyer = await newClient(`chaos-buyer-${i}`, `buyer-${i}`);
			const seller = await newClient(`chaos-seller-${i}`, `seller-${i}`);
			const conv = await buyer.call("conversations.open", { listingId: `chaos-${i}`, sellerId: `chaos-seller-${i}` });
			// The seller answers once: presence is shared only between people who exchanged messages.
			const hello = await seller.send(conv.id, "hello", `chaos-${i}-hello`);
			pairs.push({ conversationId: conv.id, buyer, seller, sent: [hello.clientMsgId], acked: new Map([[hello.clientMsgId, hello]]) });
		}

		// A device held by gateway A only, with no reconnect: when A dies its user must go offline.
		const ghostToken = await devToken(gatewayA!.url, "chaos-ghost");
		const ghost = await RawClient.connect(gatewayA!.url, ghostToken, "ghost-phone");
		const watcher = await RawClient.connect(gatewayB!.url, await devToken(gatewayB!.url, "chaos-watcher"), "watcher");
		const shared = await ghost.call("conversations.open", { listingId: "ghost-listing", sellerId: "chaos-watcher" });
		await ghost.call("messages.send", { conversationId: shared.id, clientMsgId: "g1", type: "text", text: "hi" });
		await watcher.call("messages.send", { conversationId: shared.id, clientMsgId: "w1", type: "text", text: "hello" });

		// The steady stream: every buyer sends every SEND_EVERY_MS through its outbox (resent until acked).
		let sending = true;
		const streams = pairs.map(async (pair, p) => {
			for (let n = 0; sending; n++) {
				const clientMsgId = `chaos-${p}-${n}`;
				pair.sent.push(clientMsgId);
				pair.buyer.send(pair.conversationId, `message ${n} of pair ${p}`, clientMsgId).then(
					(m) => pair.acked.set(clientMsgId, m),
					(err: Error) => assert.fail(`send ${clientMsgId} refused for good: ${err.message}`),
				);
				await sleep(SEND_EVERY_MS);
			}
		});

		await sleep(2000);
		cluster.kill(gatewayA!.nodeID, "SIGKILL");
		const offline = await watcher.waitFor("presence", (p) => p.userId === "chaos-ghost" && p.online === false, SESSION_TTL_MS + 8000);
		assert.ok(offline.lastSeenAt, "the dead gateway's user is shown offline with a last-seen time");
		const redis = new Redis(cluster.redisUrl);
		try {
			const leftovers = (await redis.keys("*")).filter((k) => k.includes(gatewayA!.nodeID));
			assert.deepEqual(leftovers, [], "nothing of the dead gateway is left in Redis");
		} finally {
			redis.disconnect();
		}
		await cluster.start(gatewayA!.nodeID);
		await sleep(2000);

		// A drain: SIGTERM tells gateway B's clients (by now every device: A's moved there when it died)
		// to move, finishes its calls in flight, then exits.
		const movedOff = gatewayClients(pairs, gatewayB!.url);
		assert.ok(movedOff.length > 0, "devices are on gateway B");
		await cluster.stopNode(gatewayB!.nodeID);
		for (const until = Date.now() + 10_000; movedOff.some((c) => !c.connected) && Date.now() < until; ) await sleep(100);
		for (const c of movedOff) assert.ok(c.connected && c.currentUrl !== gatewayB!.url, "a drained gateway's device is connected to another one");
		await cluster.start(gatewayB!.nodeID);
		await sleep(1000);

		const core = cluster.cores[0]!;
		cluster.kill(core.nodeID, "SIGKILL");
		await sleep(4000);
		await cluster.start(core.nodeID);
		await sleep(2000);

		await cluster.restartRedis();
		await sleep(4000);
		sending = false;
		await Promise.all(streams);

		// Every send is acked in the end: the outbox resends with the same clientMsgId.
		const deadline = Date.now() + 60_000;
		while (pairs.some((p) => p.acked.size < p.sent.length) && Date.now() < deadline) await sleep(200);

		// Search kept up through it all (the relay node was killed too): a last word per pair becomes findable.
		for (const [p, pair] of pairs.entries()) {
			const last = await pair.buyer.send(pair.conversationId, `goodbye zebra${p}`, `chaos-${p}-last`);
			pair.sent.push(last.clientMsgId);
			pair.acked.set(last.clientMsgId, last);
		}
		for (const [p, pair] of pairs.entries()) {
			let hits: unknown[] = [];
			for (const until = Date.now() + 30_000; hits.length === 0 && Date.now() < until; await sleep(250)) {
				hits = (await pair.seller.call("search.messages", { q: `zebra${p}` })).hits;
			}
			assert.equal(hits.length, 1, `pair ${p}: the last message is searchable`);
		}

		const counts = { sent: 0, acked: 0, stored: 0, delivered: 0, duplicates: 0, gaps: 0 };
		for (const [p, pair] of pairs.entries()) {
			counts.sent += pair.sent.length;
			counts.acked += pair.acked.size;
			const stored = await storedHistory(pair.seller, pair.conversationId);
			counts.stored += stored.length;
			const ids = stored.map((m) => m.clientMsgId);
			counts.duplicates += ids.length - new Set(ids).size;
			counts.gaps += stored.filter((m, i) => m.seq !== i + 1).length;
			for (const [clientMsgId, acked] of pair.acked) {
				const at = stored[acked.seq - 1];
				assert.equal(at?.id, acked.id, `pair ${p}: acked ${clientMsgId} is stored at its seq ${acked.seq}`);
			}
			// Both devices converge on the stored history (they sync on every reconnect): each showed
			// the app every stored message once, in seq order, whatever it lived through.
			for (const [role, device] of [["buyer", pair.buyer], ["seller", pair.seller]] as const) {
				const onDevice = () => shown.get(device)!.filter((m) => m.conversationId === pair.conversationId);
				const until = Date.now() + 30_000;
				while (onDevice().length < stored.length && Date.now() < until) await sleep(100);
				assert.deepEqual(
					onDevice().map((m) => m.id),
					stored.map((m) => m.id),
					`pair ${p}: the ${role}'s device showed exactly the stored history, in order`,
				);
				assert.equal(device.cursors()[pair.conversationId], stored.length, `pair ${p}: the ${role}'s cursor is at the last seq`);
			}
			counts.delivered += shown.get(pair.seller)!.filter((m) => m.conversationId === pair.conversationId).length;
		}
		console.log(`chaos counts: ${JSON.stringify(counts)}`);
		assert.equal(counts.acked, counts.sent, "every send was acked");
		assert.equal(counts.stored, counts.acked, "every acked message stored exactly once");
		assert.equal(counts.duplicates, 0);
		assert.equal(counts.gaps, 0);

		// Presence settles: every device is connected again and its user shown online. (The watcher's
		// own socket went with gateway B's drain; it looks again from gateway A.)
		watcher.close();
		const lookout = await RawClient.connect(gatewayA!.url, await devToken(gatewayA!.url, "chaos-watcher"), "watcher-2");
		const states = await lookout.call("presence.get", { userIds: ["chaos-watcher", "chaos-ghost"] });
		assert.deepEqual(
			states.map((s: { userId: string; online: boolean }) => [s.userId, s.online]),
			[
				["chaos-watcher", true],
				["chaos-ghost", false],
			],
		);
		const buyerStates = await pairs[0]!.seller.call("presence.get", { userIds: ["chaos-buyer-0"] });
		assert.equal(buyerStates[0]?.online, true, "a reconnected user is online again");
		ghost.close();
		lookout.close();
	});
});

/** The clients of these pairs connected to one gateway now. */
function gatewayClients(pairs: Pair[], url: string): ParleyClient[] {
	return pairs.flatMap((p) => [p.buyer, p.seller]).filter((c) => c.currentUrl === url);
}
