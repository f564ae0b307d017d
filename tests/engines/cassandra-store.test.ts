/**
 * CassandraStore against a real Cassandra: the shared behaviour suite plus what
 * only this engine can get wrong (a node restart under load, message buckets,
 * the per-conversation sequencer, writers that collide or stall, schema versions).
 *
 *   bash scripts/engines.sh start cassandra
 *   node --import tsx --test tests/engines/cassandra-store.test.ts
 *
 * Reads PARLEY_CASSANDRA_CONTACT_POINTS (default 127.0.0.1:9042) and
 * PARLEY_CASSANDRA_LOCAL_DC (default datacenter1). Each run uses a fresh
 * keyspace and drops it at the end. Without a reachable Cassandra the file
 * fails when CI=true and skips loudly otherwise.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { after, describe, it, test } from "node:test";
import { promisify } from "node:util";
import { Client, errors as driverErrors } from "cassandra-driver";
import type { Message } from "../../contract";
import { conversationIdFor, newMessageId } from "../../lib/ids";
import { CassandraDeviceRegistry } from "../../lib/push/cassandra-device-registry";
import { ensureSchema, MIGRATIONS, SCHEMA_VERSION } from "../../lib/store/cassandra-schema";
import { CassandraStore, type CassandraStoreOptions } from "../../lib/store/cassandra-store";
import type { AppendRequest, AppendResult, ChatStore } from "../../lib/store/chat-store";
import { unreadCount } from "../../lib/unread";
import { deviceRegistryBehaviour } from "../support/device-registry-behaviour";
import { storeBehaviour } from "../support/store-behaviour";

const contactPoints = (process.env.PARLEY_CASSANDRA_CONTACT_POINTS ?? "127.0.0.1:9042").split(",").map((s) => s.trim());
const localDataCenter = process.env.PARLEY_CASSANDRA_LOCAL_DC ?? "datacenter1";
const keyspace = `parley_test_${randomBytes(5).toString("hex")}`;
const ENGINES_SCRIPT = path.resolve(__dirname, "../../scripts/engines.sh");

const storeOptions = (extra: Partial<CassandraStoreOptions> = {}): CassandraStoreOptions => ({
	contactPoints,
	localDataCenter,
	keyspace,
	replication: { class: "SimpleStrategy", replication_factor: 1 },
	...extra,
});

const adminClient = () => new Client({ contactPoints, localDataCenter, socketOptions: { connectTimeout: 3000 } });

/** null when Cassandra answers, else why not. */
async function unreachableReason(): Promise<string | null> {
	const client = adminClient();
	try {
		await client.connect();
		await client.execute("SELECT release_version FROM system.local");
		return null;
	} catch (err) {
		return (err as Error).message;
	} finally {
		await client.shutdown().catch(() => undefined);
	}
}

async function dropKeyspace(): Promise<void> {
	const client = adminClient();
	try {
		await client.connect();
		await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
	} finally {
		await client.shutdown();
	}
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

let nextListing = 0;
async function openConversation(store: ChatStore, buyerId: string, sellerId: string) {
	const listingId = `listing-${++nextListing}`;
	const id = conversationIdFor("cassandra-test", buyerId, sellerId, listingId);
	return (await store.openConversation({ id, listingId, listingTitle: null, buyerId, sellerId, now: Date.now() })).conversation;
}

const request = (conversationId: string, senderId: string, clientMsgId: string): AppendRequest => ({
	id: newMessageId(),
	conversationId,
	senderId,
	clientMsgId,
	type: "text",
	text: `text of ${clientMsgId}`,
	attachments: [],
	now: Date.now(),
});

/** What a client does: resend with the same clientMsgId until the ack comes. */
async function sendUntilAcked(
	store: ChatStore,
	conversationId: string,
	senderId: string,
	clientMsgId: string,
): Promise<{ result: AppendResult; attempts: number; waitedMs: number }> {
	const started = Date.now();
	for (let attempts = 1; ; attempts++) {
		try {
			return { result: await store.appendMessage(request(conversationId, senderId, clientMsgId)), attempts, waitedMs: Date.now() - started };
		} catch (err) {
			if (attempts >= 200) throw err;
			await sleep(100);
		}
	}
}

const seqs = (messages: Message[]) => messages.map((m) => m.seq);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Every message stored once, in seq order 1..N with no gap, and each acked one exactly as acked. */
async function assertStoredExactlyOnce(store: ChatStore, conversationId: string, acked: Map<string, Message>): Promise<void> {
	const stored = await store.messagesAfter(conversationId, 0, 1_000_000);
	assert.deepEqual(seqs(stored), range(1, stored.length), "seq is dense");
	assert.equal(new Set(stored.map((m) => `${m.senderId}/${m.clientMsgId}`)).size, stored.length, "no (sender, clientMsgId) twice");
	assert.equal(stored.length, acked.size, "nothing stored that was not acked, nothing acked that was not stored");
	const byClientId = new Map(stored.map((m) => [m.clientMsgId, m]));
	for (const [clientMsgId, message] of acked) assert.deepEqual(byClientId.get(clientMsgId), message, `acked ${clientMsgId} stored as acked`);
	assert.equal((await store.getConversation(conversationId))?.lastSeq, stored.length);
}

function cassandraEngineTests(): void {
	describe("Cassandra engine specifics", () => {
		const stores: CassandraStore[] = [];
		const openStore = async (extra: Partial<CassandraStoreOptions> = {}) => {
			const store = new CassandraStore(storeOptions(extra));
			await store.open();
			stores.push(store);
			return store;
		};
		after(async () => {
			await Promise.all(stores.map((s) => s.close()));
		});

		it("20 concurrent appends to one conversation, each sent twice at once and again later, give seq 1..20 once each", async () => {
			const store = await openStore();
			const conversation = await openConversation(store, "dup-b", "dup-s");
			const clientIds = range(1, 20).map((i) => `c20-${i}`);
			const sender = (i: number) => (i % 2 ? "dup-b" : "dup-s");
			const firstWave = await Promise.all(
				[...clientIds, ...clientIds].map((cid, i) => store.appendMessage(request(conversation.id, sender(i % 20), cid))),
			);
			const originals = firstWave.filter((r) => !r.duplicate);
			assert.deepEqual(seqs(originals.map((r) => r.message)).sort((a, b) => a - b), range(1, 20));
			const original = new Map(originals.map((r) => [r.message.clientMsgId, r.message]));
			for (const r of firstWave.filter((x) => x.duplicate)) assert.deepEqual(r.message, original.get(r.message.clientMsgId));

			const retries = await Promise.all(clientIds.map((cid, i) => store.appendMessage(request(conversation.id, sender(i), cid))));
			assert.ok(retries.every((r) => r.duplicate));
			for (const r of retries) assert.deepEqual(r.message, original.get(r.message.clientMsgId));
			await assertStoredExactlyOnce(store, conversation.id, original);
			const members = await store.members(conversation.id);
			assert.deepEqual(members.map((m) => m.sentCount), [10, 10]);
		});

		it("a conversation of more than 1000 messages crosses buckets and every read returns exact ranges", async () => {
			const store = await openStore();
			const conversation = await openConversation(store, "bk-b", "bk-s");
			const total = 2105;
			for (let from = 1; from <= total; from += 250) {
				const wave = range(from, Math.min(total, from + 249));
				await Promise.all(wave.map((i) => store.appendMessage(request(conversation.id, i % 3 === 0 ? "bk-s" : "bk-b", `bk-${i}`))));
			}
			const all = await store.messagesAfter(conversation.id, 0, 10_000);
			assert.deepEqual(seqs(all), range(1, total));
			const cases: [string, Promise<Message[]>, number[]][] = [
				["after 990, 20", store.messagesAfter(conversation.id, 990, 20), range(991, 1010)],
				["after 999, 2", store.messagesAfter(conversation.id, 999, 2), [1000, 1001]],
				["after 1000, 1", store.messagesAfter(conversation.id, 1000, 1), [1001]],
				["after 100, 1500", store.messagesAfter(conversation.id, 100, 1500), range(101, 1600)],
				["after 1995, 2000", store.messagesAfter(conversation.id, 1995, 2000), range(1996, total)],
				["after the last", store.messagesAfter(conversation.id, total, 10), []],
				["newest 30", store.history(conversation.id, { limit: 30 }), range(total - 29, total)],
				["before 1005", store.history(conversation.id, { beforeSeq: 1005, limit: 10 }), range(995, 1004)],
				["before 2001, 1500", store.history(conversation.id, { beforeSeq: 2001, limit: 1500 }), range(501, 2000)],
				["before 1", store.history(conversation.id, { beforeSeq: 1, limit: 10 }), []],
				["before far away", store.history(conversation.id, { beforeSeq: 1e12, limit: 3 }), range(total - 2, total)],
				["998 < seq < 1003", store.history(conversation.id, { afterSeq: 998, beforeSeq: 1003, limit: 10 }), range(999, 1002)],
				["1990 < seq < 2010, 5", store.history(conversation.id, { afterSeq: 1990, beforeSeq: 2010, limit: 5 }), range(1991, 1995)],
				["after 2099", store.history(conversation.id, { afterSeq: 2099, limit: 10 }), range(2100, total)],
			];
			for (const [name, result, expected] of cases) assert.deepEqual(seqs(await result), expected, name);

			// The unread bookkeeping counts own messages across buckets too.
			const sentBySeller = range(1, total).filter((i) => i % 3 === 0).length;
			await store.saveWatermarks([{ conversationId: conversation.id, userId: "bk-s", delivered: 1500, read: 1500 }]);
			const entry = await store.inboxEntry("bk-s", conversation.id);
			const mineAfter1500 = range(1501, total).filter((i) => i % 3 === 0).length;
			assert.equal(entry?.member.sentCount, sentBySeller);
			assert.equal(entry?.member.sentUpToRead, sentBySeller - mineAfter1500);
			assert.equal(unreadCount(entry!.conversation.lastSeq, entry!.member), total - 1500 - mineAfter1500);
			assert.equal(entry?.lastMessage?.seq, total);
		});

		it("reusing a clientMsgId in another conversation is a CONFLICT, also when both are sent at once", async () => {
			const store = await openStore();
			const a = await openConversation(store, "cf-b", "cf-s1");
			const b = await openConversation(store, "cf-b", "cf-s2");
			await store.appendMessage(request(a.id, "cf-b", "cf-once"));
			await assert.rejects(store.appendMessage(request(b.id, "cf-b", "cf-once")), (e: { type: string }) => e.type === "CONFLICT");
			const both = await Promise.allSettled([store.appendMessage(request(a.id, "cf-b", "cf-race")), store.appendMessage(request(b.id, "cf-b", "cf-race"))]);
			assert.equal(both.filter((r) => r.status === "fulfilled").length, 1);
			assert.equal(both.filter((r) => r.status === "rejected" && (r.reason as { type: string }).type === "CONFLICT").length, 1);
		});

		it("two writers appending to one conversation at the same time never share a seq", async () => {
			const warnings: string[] = [];
			const first = await openStore({ warn: (m) => warnings.push(m) });
			const second = await openStore({ warn: (m) => warnings.push(m) });
			const conversation = await openConversation(first, "fw-b", "fw-s");
			// Each writer learns the conversation once, so both hold a view when they start racing.
			const warmUp = [(await first.appendMessage(request(conversation.id, "fw-b", "fw-0a"))).message, (await second.appendMessage(request(conversation.id, "fw-b", "fw-0b"))).message];
			const sends = range(1, 60).map((i) => {
				const writer = i % 2 ? first : second;
				return writer.appendMessage(request(conversation.id, i % 3 ? "fw-b" : "fw-s", `fw-${i}`));
			});
			const acked = new Map([...warmUp, ...(await Promise.all(sends)).map((r) => r.message)].map((m) => [m.clientMsgId, m]));
			await assertStoredExactlyOnce(first, conversation.id, acked);
			assert.deepEqual((await second.members(conversation.id)).map((m) => m.sentCount), [42, 20], "sent counts as of the last seq");
			assert.ok(warnings.some((w) => w.includes("already taken by another writer")), "the writers did collide on a seq");
		});

		it("a writer that stalls between claiming seqs and finishing loses nothing: the next writer completes its group", async () => {
			const warnings: string[] = [];
			let release!: () => void;
			const stalled = new Promise<void>((resolve) => (release = resolve));
			let stalls = 0;
			const slow = await openStore({
				warn: (m) => warnings.push(m),
				afterClaim: async () => {
					if (stalls++ === 0) await stalled;
				},
			});
			const other = await openStore({ warn: (m) => warnings.push(m) });
			const conversation = await openConversation(slow, "st-b", "st-s");
			const acked = new Map<string, Message>();
			for (const cid of ["st-1", "st-2"]) acked.set(cid, (await other.appendMessage(request(conversation.id, "st-b", cid))).message);
			// The slow writer claims seq 3 and stalls before its follow-up (last_seq, pointers, counts).
			const late = slow.appendMessage(request(conversation.id, "st-s", "st-3"));
			while (stalls === 0) await sleep(5);
			// Meanwhile the conversation moves to another writer, which completes seq 3 and goes on.
			for (const cid of ["st-4", "st-5"]) acked.set(cid, (await other.appendMessage(request(conversation.id, "st-b", cid))).message);
			assert.ok(warnings.some((w) => w.includes("completed seqs 3..3")), "the second writer completed the stalled group");
			// The stalled follow-up lands last: it must not move last_seq or the counts back.
			release();
			const { message } = await late;
			acked.set("st-3", message);
			assert.equal(message.seq, 3);
			assert.deepEqual(seqs([...acked.values()]).sort((a, b) => a - b), [1, 2, 3, 4, 5]);
			await assertStoredExactlyOnce(other, conversation.id, acked);
			assert.deepEqual((await other.members(conversation.id)).map((m) => m.sentCount), [4, 1]);
			assert.deepEqual((await other.memberships("st-b")).find((m) => m.conversationId === conversation.id)?.lastSeq, 5);
		});

		it("a writer that died after claiming a seq leaves no gap: the next writer completes it, and the client's retry gets the original", async () => {
			const warnings: string[] = [];
			const store = await openStore({ warn: (m) => warnings.push(m) });
			const conversation = await openConversation(store, "dc-b", "dc-s");
			const acked = new Map<string, Message>();
			for (const cid of ["dc-1", "dc-2"]) acked.set(cid, (await store.appendMessage(request(conversation.id, "dc-b", cid))).message);
			// Another process claims seq 3 for dc-3 (the conditional insert) and dies before its follow-up.
			const admin = adminClient();
			await admin.connect();
			const claimed = await admin.execute(
				`INSERT INTO ${keyspace}.messages (conversation_id, bucket, seq, id, sender_id, client_msg_id, type, text, attachments, created_at)
				 VALUES (?, 0, 3, ?, 'dc-b', 'dc-3', 'text', 'text of dc-3', '[]', ?) IF NOT EXISTS`,
				[conversation.id, newMessageId(), new Date()],
				{ prepare: true },
			);
			await admin.shutdown();
			assert.equal(claimed.wasApplied(), true);

			const fresh = await openStore({ warn: (m) => warnings.push(m) });
			const { message } = await fresh.appendMessage(request(conversation.id, "dc-s", "dc-4"));
			assert.equal(message.seq, 4, "seq 3 stays taken: no gap, no reuse");
			acked.set("dc-4", message);
			const retry = await fresh.appendMessage(request(conversation.id, "dc-b", "dc-3"));
			assert.equal(retry.message.seq, 3, "the sender's retry finds the message its first attempt stored");
			assert.equal(retry.duplicate, true);
			acked.set("dc-3", retry.message);
			await assertStoredExactlyOnce(fresh, conversation.id, acked);
			assert.deepEqual((await fresh.members(conversation.id)).map((m) => m.sentCount), [3, 1]);
			assert.ok(warnings.some((w) => w.includes("completed seqs 3..3")));
		});

		it("watermarks saved by two writers at once keep the higher mark, whatever lands last", async () => {
			const a = await openStore();
			const b = await openStore();
			for (let round = 0; round < 8; round++) {
				const conversation = await openConversation(a, `wm-b${round}`, `wm-s${round}`);
				await Promise.all(range(1, 10).map((i) => a.appendMessage(request(conversation.id, `wm-s${round}`, `wm-${round}-${i}`))));
				const mark = (store: CassandraStore, read: number) => store.saveWatermarks([{ conversationId: conversation.id, userId: `wm-b${round}`, delivered: read, read }]);
				await Promise.all(round % 2 ? [mark(a, 9), mark(b, 4)] : [mark(b, 4), mark(a, 9)]);
				const buyer = (await b.members(conversation.id)).find((m) => m.userId === `wm-b${round}`)!;
				assert.deepEqual([buyer.delivered, buyer.read, unreadCount(10, buyer)], [9, 9, 1], `round ${round}`);
			}
		});

		it("the schema is created once under a lock, re-checked with one read, and a keyspace from another build is refused", async () => {
			const client = adminClient();
			await client.connect();
			const fresh = `${keyspace}_schema`;
			const old = `${keyspace}_old`;
			try {
				const results = await Promise.all(range(1, 3).map((i) => ensureSchema(client, fresh, { class: "SimpleStrategy", replication_factor: 1 }, `test-${i}`)));
				assert.ok(results.every((r) => r.to === SCHEMA_VERSION));
				assert.equal(results.filter((r) => r.from === null).length, 3, "all three found an empty keyspace");
				assert.deepEqual(await ensureSchema(client, fresh, { class: "SimpleStrategy", replication_factor: 1 }, "again"), { from: SCHEMA_VERSION, to: SCHEMA_VERSION });
				await client.execute(`UPDATE ${fresh}.meta SET value = ? WHERE key = 'schema_version'`, [String(SCHEMA_VERSION + 1)], { prepare: true });
				await assert.rejects(ensureSchema(client, fresh, { class: "SimpleStrategy", replication_factor: 1 }, "old-build"), /newer than this build/);
				// A migration cut short (no version row yet) is completed by the next run.
				await client.execute(`DELETE FROM ${fresh}.meta WHERE key = 'schema_version'`);
				assert.deepEqual(await ensureSchema(client, fresh, { class: "SimpleStrategy", replication_factor: 1 }, "resume"), { from: null, to: SCHEMA_VERSION });
				// Tables of another shape without a version were made by a pre-release build: refused.
				await client.execute(`CREATE KEYSPACE ${old} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`);
				await client.execute(`CREATE TABLE ${old}.conversations (id text PRIMARY KEY, fence_seq bigint)`);
				await assert.rejects(ensureSchema(client, old, { class: "SimpleStrategy", replication_factor: 1 }, "unversioned"), /without a schema version/);
			} finally {
				await client.execute(`DROP KEYSPACE IF EXISTS ${old}`);
				await client.execute(`DROP KEYSPACE IF EXISTS ${fresh}`);
				await client.shutdown();
			}
		});

		it("a keyspace at schema version 1 is migrated to 2 at start, and its data keeps working", async () => {
			const client = adminClient();
			await client.connect();
			const v1 = `${keyspace}_v1`;
			try {
				await client.execute(`CREATE KEYSPACE ${v1} WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}`);
				await client.execute(`CREATE TABLE ${v1}.meta (key text PRIMARY KEY, value text)`);
				for (const ddl of MIGRATIONS[0]!(v1)) await client.execute(ddl);
				await client.execute(`INSERT INTO ${v1}.meta (key, value) VALUES ('schema_version', '1')`);
				await client.execute(`INSERT INTO ${v1}.conversations (id, listing_id, buyer_id, seller_id, created_at) VALUES ('c-old', 'l', 'ob', 'os', toTimestamp(now()))`);
				await client.execute(`INSERT INTO ${v1}.members (conversation_id, user_id, role) VALUES ('c-old', 'ob', 'buyer')`);
				await client.execute(`INSERT INTO ${v1}.members (conversation_id, user_id, role) VALUES ('c-old', 'os', 'seller')`);

				const store = await openStore({ keyspace: v1 });
				const { message } = await store.appendMessage(request("c-old", "ob", "v1-1"));
				const edited = await store.changeMessage({ conversationId: "c-old", seq: message.seq, editorId: "ob", text: "after the upgrade", now: Date.now() });
				assert.deepEqual([message.seq, edited.message.changeSeq], [1, 1]);
				const version = await client.execute(`SELECT value FROM ${v1}.meta WHERE key = 'schema_version'`);
				assert.equal(version.first().get("value"), String(SCHEMA_VERSION));
			} finally {
				await client.execute(`DROP KEYSPACE IF EXISTS ${v1}`);
				await client.shutdown();
			}
		});

		it("two writers editing one conversation at the same time number the changes densely, and the latest edit wins", async () => {
			const first = await openStore();
			const second = await openStore();
			const conversation = await openConversation(first, "ce-b", "ce-s");
			const { message } = await first.appendMessage(request(conversation.id, "ce-b", "ce-1"));
			// Each writer learns the change count, then they race.
			await first.changeMessage({ conversationId: conversation.id, seq: 1, editorId: "ce-b", text: "v0", now: Date.now() });
			await second.changeMessage({ conversationId: conversation.id, seq: 1, editorId: "ce-b", text: "v0b", now: Date.now() });
			const results = await Promise.all(
				range(1, 20).map((i) => (i % 2 ? first : second).changeMessage({ conversationId: conversation.id, seq: message.seq, editorId: "ce-b", text: `v${i}`, now: Date.now() })),
			);
			const numbers = results.map((r) => r.message.changeSeq!).sort((a, b) => a - b);
			assert.deepEqual(numbers, range(3, 22), "dense and unique");
			const last = results.find((r) => r.message.changeSeq === 22)!.message.text;
			const [stored] = await first.history(conversation.id, { limit: 1 });
			assert.deepEqual([stored?.text, stored?.changeSeq], [last, 22], "the row holds the highest-numbered edit");
			assert.equal((await second.getConversation(conversation.id))?.lastChangeSeq, 22);
		});

		it("appends and edits of one conversation at the same time: every acked edit is stored, every acked message once", async () => {
			const store = await openStore();
			const conversation = await openConversation(store, "ae-b", "ae-s");
			const acked = new Map<string, Message>();
			for (const i of range(1, 5)) acked.set(`ae-${i}`, (await store.appendMessage(request(conversation.id, "ae-b", `ae-${i}`))).message);
			const work = range(6, 40).map(async (i) => {
				if (i % 2) return void acked.set(`ae-${i}`, (await store.appendMessage(request(conversation.id, "ae-b", `ae-${i}`))).message);
				const r = await store.changeMessage({ conversationId: conversation.id, seq: (i % 5) + 1, editorId: "ae-b", text: `edit ${i}`, now: Date.now() });
				assert.equal(r.changed, true);
			});
			await Promise.all(work);
			const stored = await store.messagesAfter(conversation.id, 0, 1000);
			assert.deepEqual(seqs(stored), range(1, acked.size), "dense, each message once");
			const lastChange = (await store.getConversation(conversation.id))!.lastChangeSeq;
			assert.equal(lastChange, range(6, 40).filter((i) => i % 2 === 0).length, "every acked edit took a number");
			const { messages } = await store.changesAfter(conversation.id, 0, 1000, 100);
			assert.deepEqual(messages.map((m) => m.seq).sort(), [1, 2, 3, 4, 5], "every edited message shows an edit");
			assert.ok(messages.every((m) => m.text.startsWith("edit ") && m.changeSeq! <= lastChange));
		});

		it("an edit whose write fails once is retried and still reported as a change, with its number", async () => {
			let failNext = false;
			const store = await openStore({
				afterClaim: async () => {
					if (!failNext) return;
					failNext = false;
					throw new driverErrors.OperationTimedOutError("injected: the follow-up timed out");
				},
			});
			const conversation = await openConversation(store, "rf-b", "rf-s");
			const { message } = await store.appendMessage(request(conversation.id, "rf-b", "rf-1"));
			failNext = true;
			const result = await store.changeMessage({ conversationId: conversation.id, seq: message.seq, editorId: "rf-b", text: "second try", now: Date.now() });
			assert.deepEqual([result.changed, result.message.text, result.message.changeSeq], [true, "second try", 1]);
			assert.equal(failNext, false, "the failure did happen");
			assert.equal((await store.getConversation(conversation.id))?.lastChangeSeq, 1);
		});

		it("an edit claimed by a writer that died is completed when the conversation is next loaded, by an append too", async () => {
			const store = await openStore();
			const conversation = await openConversation(store, "de-b", "de-s");
			const { message } = await store.appendMessage(request(conversation.id, "de-b", "de-1"));
			const admin = adminClient();
			await admin.connect();
			const claimed = await admin.execute(
				`INSERT INTO ${keyspace}.message_changes (conversation_id, bucket, change_seq, seq, text, deleted, changed_at) VALUES (?, 0, 1, ?, 'edited by the dead', false, ?) IF NOT EXISTS`,
				[conversation.id, message.seq, new Date()],
				{ prepare: true },
			);
			await admin.shutdown();
			assert.equal(claimed.wasApplied(), true);
			const fresh = await openStore();
			await fresh.appendMessage(request(conversation.id, "de-s", "de-2"));
			const [first] = await fresh.history(conversation.id, { afterSeq: 0, limit: 1 });
			assert.deepEqual([first?.text, first?.changeSeq], ["edited by the dead", 1]);
			assert.equal((await fresh.getConversation(conversation.id))?.lastChangeSeq, 1);
			const next = await fresh.changeMessage({ conversationId: conversation.id, seq: message.seq, editorId: "de-b", text: "and again", now: Date.now() });
			assert.equal(next.message.changeSeq, 2, "numbering goes on after it");
		});

		it("a seq far past the end is not found, never a query error", async () => {
			const store = await openStore();
			const conversation = await openConversation(store, "hs-b", "hs-s");
			await store.appendMessage(request(conversation.id, "hs-b", "hs-1"));
			await assert.rejects(store.changeMessage({ conversationId: conversation.id, seq: Number.MAX_SAFE_INTEGER, editorId: "hs-b", text: "x", now: Date.now() }), (e: { type: string }) => e.type === "NOT_FOUND");
			assert.deepEqual(await store.messagesAfter(conversation.id, Number.MAX_SAFE_INTEGER - 1, 10), []);
			assert.deepEqual(await store.history(conversation.id, { afterSeq: Number.MAX_SAFE_INTEGER - 5, limit: 10 }), []);
		});

		it("the search feed hands over every appended message until confirmed, and only new ones after", async () => {
			const plain = await openStore();
			assert.equal(plain.searchFeed, undefined, "a store that feeds no index keeps no outbox");
			const store = await openStore({ feedSearch: true, searchSettleMs: 0 });
			const feed = store.searchFeed!;
			const a = await openConversation(store, "sf-b", "sf-s1");
			const b = await openConversation(store, "sf-b", "sf-s2");
			await Promise.all(range(1, 30).map((i) => store.appendMessage(request(a.id, "sf-b", `sf-a${i}`))));
			await Promise.all(range(1, 5).map((i) => store.appendMessage(request(b.id, "sf-s2", `sf-b${i}`))));
			const seqsOf = (entries: { message: Message }[], id: string) => seqs(entries.filter((e) => e.message.conversationId === id).map((e) => e.message));

			const all = await feed.backlog(100);
			assert.deepEqual([seqsOf(all, a.id), seqsOf(all, b.id)], [range(1, 30), range(1, 5)]);
			assert.equal((await feed.backlog(10)).length, 10);
			assert.equal((await feed.backlog(100)).length, 35, "nothing leaves the outbox before it is confirmed");
			await feed.confirm(all.map((e) => e.key));
			assert.deepEqual(await feed.backlog(100), []);

			await store.appendMessage(request(a.id, "sf-s1", "sf-late-1"));
			await store.appendMessage(request(a.id, "sf-b", "sf-late-2"));
			const late = await feed.backlog(100);
			assert.deepEqual(seqsOf(late, a.id), [31, 32]);
			await feed.confirm(late.map((e) => e.key));
			assert.deepEqual(await feed.backlog(100), []);

			const ids: string[] = [];
			for (let page = await feed.conversationIds(3); page.length > 0; page = await feed.conversationIds(3, page[page.length - 1])) ids.push(...page);
			assert.equal(new Set(ids).size, ids.length, "conversation pages do not overlap");
			assert.ok(ids.includes(a.id) && ids.includes(b.id));
		});

		it("Cassandra restarted mid-test loses no acked message", { timeout: 90_000 }, async () => {
			const store = await openStore({ appendRetryMs: 3000 });
			const conversations = [await openConversation(store, "rs-b1", "rs-s1"), await openConversation(store, "rs-b2", "rs-s2")];
			const acked = conversations.map(() => new Map<string, Message>());
			let phase: "before" | "restarting" | "after" = "before";
			let ackedAfterRestart = 0;
			let retried = 0;
			let slowestAckMs = 0;
			const worker = async (w: number) => {
				const c = w % conversations.length;
				const conversation = conversations[c]!;
				const sender = w % 4 < 2 ? conversation.buyerId : conversation.sellerId;
				for (let i = 0; phase !== "after" || ackedAfterRestart < 200; i++) {
					const { result, attempts, waitedMs } = await sendUntilAcked(store, conversation.id, sender, `rs-${w}-${i}`);
					acked[c]!.set(result.message.clientMsgId, result.message);
					if (attempts > 1) retried++;
					slowestAckMs = Math.max(slowestAckMs, waitedMs);
					if (phase === "after") ackedAfterRestart++;
				}
			};
			const workers = Promise.all(range(0, 7).map(worker));
			while (acked.reduce((n, m) => n + m.size, 0) < 150) await sleep(20);
			phase = "restarting";
			const started = Date.now();
			await promisify(execFile)("bash", [ENGINES_SCRIPT, "restart", "cassandra"], { timeout: 80_000 });
			console.log(`cassandra restarted in ${Date.now() - started} ms`);
			phase = "after";
			await workers;
			console.log(`${retried} sends were rejected at least once and resent; the slowest ack took ${slowestAckMs} ms`);
			for (const [c, conversation] of conversations.entries()) await assertStoredExactlyOnce(store, conversation.id, acked[c]!);
			console.log(`acked ${acked.map((m) => m.size).join(" + ")} messages, all stored once with dense seq`);
		});
	});
}

/**
 * Registers the suites once Cassandra is known to answer. node:test accepts
 * tests registered after an await at the top level of a file.
 */
async function main(): Promise<void> {
	const reason = await unreachableReason();
	if (reason !== null) {
		const message = `Cassandra is not reachable at ${contactPoints.join(",")} (${reason}). Start it with: bash scripts/engines.sh start cassandra`;
		if (process.env.CI === "true") {
			test("Cassandra is reachable (CI)", () => assert.fail(message));
		} else {
			console.error(`\n${"!".repeat(100)}\n!!! SKIPPING the Cassandra store tests: ${message}\n${"!".repeat(100)}\n`);
			test("ChatStore behaviour: cassandra", { skip: message }, () => undefined);
		}
		return;
	}
	describe(`CassandraStore (keyspace ${keyspace})`, () => {
		after(dropKeyspace);
		storeBehaviour("cassandra", async () => new CassandraStore(storeOptions()));
		deviceRegistryBehaviour("cassandra", async () => new CassandraDeviceRegistry(storeOptions()));
		cassandraEngineTests();
	});
}

void main();
