/**
 * The core chat contract, checked from outside with real socket.io clients
 * against a real server process on a real port with a real SQLite file.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Message } from "../../contract";
import { RawClient, devToken, expectError, sleep, startServer, storedHistory, syncPages, until, type ServerHandle } from "./server";

/** How long a typing flag lives without a refresh, on the server under test. */
const TYPING_TTL_MS = 600;

/** Starts the server under test: one process, or a cluster whose gateways are all in `urls`. */
export type StartTarget = (env: Record<string, string>) => Promise<ServerHandle>;

export function chatSuite(engines: string, env: Record<string, string> = {}, start: StartTarget = startServer): void {
describe(`chat between a buyer and a seller (${engines})`, () => {
	let server: ServerHandle;
	/** The i-th gateway: in a cluster the two sides of a conversation sit on different nodes. */
	const at = (i: number) => {
		const urls = server.urls ?? [server.url];
		return urls[i % urls.length]!;
	};
	let buyerPhone: RawClient, buyerLaptop: RawClient, seller: RawClient;
	let conversationId: string;

	before(async () => {
		server = await start({ PARLEY_TYPING_TTL_MS: String(TYPING_TTL_MS), ...env });
		const [tb, ts] = await Promise.all([devToken(server.url, "buyer-1"), devToken(server.url, "seller-1")]);
		buyerPhone = await RawClient.connect(at(0), tb, "phone");
		buyerLaptop = await RawClient.connect(at(1), tb, "laptop");
		seller = await RawClient.connect(at(1), ts, "seller-phone");
		const conv = await buyerPhone.call("conversations.open", { listingId: "bike-42", sellerId: "seller-1", listingTitle: "Blue bike" });
		conversationId = conv.id;
	});

	after(async () => {
		for (const c of [buyerPhone, buyerLaptop, seller]) c?.close();
		await server?.stop();
	});

	it("opening the same listing twice returns the same conversation, with both members", async () => {
		const again = await buyerLaptop.call("conversations.open", { listingId: "bike-42", sellerId: "seller-1" });
		assert.equal(again.id, conversationId);
		assert.equal(again.listingTitle, "Blue bike");
		assert.deepEqual(again.members.map((m: { userId: string }) => m.userId).sort(), ["buyer-1", "seller-1"]);
		const seen = await seller.call("conversations.get", { conversationId });
		assert.equal(seen.buyerId, "buyer-1");
		assert.equal(seen.sellerId, "seller-1");
	});

	it("a message reaches the seller and the buyer's other device, with ticks going sent -> delivered -> read", async () => {
		const sent = await buyerPhone.call("messages.send", { conversationId, clientMsgId: "hello-1", type: "text", text: "Is the blue bike still available?" });
		assert.equal(sent.seq, 1);
		assert.equal(sent.senderId, "buyer-1");
		assert.equal(sent.text, "Is the blue bike still available?");
		assert.deepEqual(sent.attachments, []);

		const atSeller = await seller.waitFor("message.new", (m) => m.id === sent.id);
		const atLaptop = await buyerLaptop.waitFor("message.new", (m) => m.id === sent.id);
		assert.deepEqual(atSeller, sent);
		assert.deepEqual(atLaptop, sent);
		assert.equal(buyerPhone.of("message.new").length, 0, "the sending device has the ack, not an echo");

		const sellerSummary = await seller.waitFor("conversation.updated", (c) => c.id === conversationId && c.lastSeq === 1);
		assert.equal(sellerSummary.unread, 1);
		assert.equal(sellerSummary.lastMessage.text, "Is the blue bike still available?");

		const delivered = await seller.call("receipts.mark", { conversationId, seq: 1, state: "delivered" });
		assert.deepEqual(delivered, { delivered: 1, read: 0 });
		await buyerPhone.waitFor("receipt.updated", (r) => r.userId === "seller-1" && r.delivered === 1 && r.read === 0);

		const read = await seller.call("receipts.mark", { conversationId, seq: 1, state: "read" });
		assert.deepEqual(read, { delivered: 1, read: 1 });
		await buyerPhone.waitFor("receipt.updated", (r) => r.userId === "seller-1" && r.read === 1);
		await buyerLaptop.waitFor("receipt.updated", (r) => r.userId === "seller-1" && r.read === 1);

		const conv = await buyerLaptop.call("conversations.get", { conversationId });
		const sellerMember = conv.members.find((m: { userId: string }) => m.userId === "seller-1");
		assert.deepEqual({ delivered: sellerMember?.delivered, read: sellerMember?.read }, { delivered: 1, read: 1 });
	});

	it("watermarks never move back: a late delivered receipt is harmless", async () => {
		const late = await seller.call("receipts.mark", { conversationId, seq: 0, state: "delivered" });
		assert.deepEqual(late, { delivered: 1, read: 1 });
	});

	it("a retry with the same clientMsgId yields the original message, stored once", async () => {
		const params = { conversationId, clientMsgId: "retry-me", type: "text" as const, text: "Can you do 80?" };
		const first = await buyerPhone.call("messages.send", params);
		const retries = await Promise.all([buyerPhone.call("messages.send", params), buyerLaptop.call("messages.send", params)]);
		for (const r of retries) assert.deepEqual(r, first);
		const history = await seller.call("messages.history", { conversationId });
		assert.equal(history.filter((m: { clientMsgId: string }) => m.clientMsgId === "retry-me").length, 1);
	});

	it("reusing a clientMsgId in another conversation is a CONFLICT, not a silent duplicate", async () => {
		const other = await buyerPhone.call("conversations.open", { listingId: "lamp-7", sellerId: "seller-1" });
		await expectError(buyerPhone.call("messages.send", { conversationId: other.id, clientMsgId: "retry-me", type: "text", text: "x" }), "CONFLICT", 409);
	});

	it("20 concurrent senders get seq 1..N with no gap, and every device of both people shows them in that order", async () => {
		const tb = await devToken(server.url, "buyer-2");
		const ts = await devToken(server.url, "seller-2");
		// Both people write from one device and watch from another; the devices are spread over the gateways.
		const devices: Record<string, RawClient> = {
			"buyer's phone": await RawClient.connect(at(0), tb, "b2"),
			"seller's phone": await RawClient.connect(at(1), ts, "s2"),
			"buyer's tablet": await RawClient.connect(at(1), tb, "b2-tablet"),
			"seller's laptop": await RawClient.connect(at(0), ts, "s2-laptop"),
		};
		const senders = [devices["buyer's phone"]!, devices["seller's phone"]!];
		try {
			const { id } = await senders[0]!.call("conversations.open", { listingId: "sofa", sellerId: "seller-2" });
			const sentFrom = new Map<string, RawClient>();
			const acks = await Promise.all(
				Array.from({ length: 20 }, (_, i) => {
					const clientMsgId = `c-${i}`;
					sentFrom.set(clientMsgId, senders[i % 2]!);
					return senders[i % 2]!.call("messages.send", { conversationId: id, clientMsgId, type: "text", text: `message ${i}` });
				}),
			);
			const seqs = acks.map((m) => m.seq).sort((x, y) => x - y);
			assert.deepEqual(seqs, Array.from({ length: 20 }, (_, i) => i + 1));
			const history = await storedHistory(senders[0]!, id);
			assert.deepEqual(history.map((m) => m.seq), seqs);

			// Each device shows live every message it did not send itself (its own are acks), in the stored order.
			const liveOn = (device: RawClient) => device.of("message.new").filter((m: Message) => m.conversationId === id).map((m: Message) => m.id);
			const expected = new Map(Object.values(devices).map((d) => [d, history.filter((m) => sentFrom.get(m.clientMsgId) !== d).map((m) => m.id)]));
			await until("every device's live messages", () => [...expected].every(([d, ids]) => liveOn(d).length >= ids.length), 5000);
			// A moment more, so a late repeat would show too.
			await sleep(100);
			for (const [name, device] of Object.entries(devices)) {
				assert.deepEqual(liveOn(device), expected.get(device), `${name} shows the stored order, each message once`);
			}
			// A device catching up afterwards gets that same order.
			const synced = (await syncPages(devices["seller's laptop"]!, { [id]: 0 }, 200)).flat().filter((m) => m.conversationId === id);
			assert.deepEqual(synced.map((m) => m.id), history.map((m) => m.id));
		} finally {
			for (const c of Object.values(devices)) c.close();
		}
	});

	it("history pages by seq in ascending order", async () => {
		const tb = await devToken(server.url, "pager");
		const c = await RawClient.connect(server.url, tb, "p");
		try {
			const { id } = await c.call("conversations.open", { listingId: "books", sellerId: "seller-1" });
			for (let i = 1; i <= 7; i++) await c.call("messages.send", { conversationId: id, clientMsgId: `p${i}`, type: "text", text: `n${i}` });
			const newest = await c.call("messages.history", { conversationId: id, limit: 3 });
			assert.deepEqual(newest.map((m: { seq: number }) => m.seq), [5, 6, 7]);
			const older = await c.call("messages.history", { conversationId: id, beforeSeq: 5, limit: 3 });
			assert.deepEqual(older.map((m: { seq: number }) => m.seq), [2, 3, 4]);
			const after = await c.call("messages.history", { conversationId: id, afterSeq: 5 });
			assert.deepEqual(after.map((m: { seq: number }) => m.seq), [6, 7]);
		} finally {
			c.close();
		}
	});

	it("unread counts agree on every device and drop to 0 everywhere after a read on one", async () => {
		const tb = await devToken(server.url, "buyer-3");
		const ts = await devToken(server.url, "seller-3");
		const b = await RawClient.connect(server.url, tb, "b3");
		const phone = await RawClient.connect(at(1), ts, "s3-phone");
		const laptop = await RawClient.connect(server.url, ts, "s3-laptop");
		try {
			const { id } = await b.call("conversations.open", { listingId: "desk", sellerId: "seller-3" });
			let last = 0;
			for (let i = 0; i < 3; i++) last = (await b.call("messages.send", { conversationId: id, clientMsgId: `u${i}`, type: "text", text: `hi ${i}` })).seq;
			// The seller replies once: their own message never counts as unread for them.
			await phone.call("messages.send", { conversationId: id, clientMsgId: "reply", type: "text", text: "yes?" });
			for (const device of [phone, laptop]) {
				const inbox = await device.call("conversations.list", {});
				assert.equal(inbox.items.find((c) => c.id === id)?.unread, 3);
			}
			const buyerInbox = await b.call("conversations.list", {});
			assert.equal(buyerInbox.items.find((c) => c.id === id)?.unread, 1);

			await phone.call("receipts.mark", { conversationId: id, seq: last + 1, state: "read" });
			await laptop.waitFor("conversation.updated", (c) => c.id === id && c.unread === 0);
			for (const device of [phone, laptop]) {
				const inbox = await device.call("conversations.list", {});
				assert.equal(inbox.items.find((c) => c.id === id)?.unread, 0);
			}
		} finally {
			for (const c of [b, phone, laptop]) c.close();
		}
	});

	it("the inbox lists newest activity first and pages with a cursor", async () => {
		const t = await devToken(server.url, "collector");
		const c = await RawClient.connect(server.url, t, "c");
		try {
			const ids: string[] = [];
			for (let i = 0; i < 5; i++) {
				const { id } = await c.call("conversations.open", { listingId: `item-${i}`, sellerId: `shop-${i}` });
				ids.push(id);
				await c.call("messages.send", { conversationId: id, clientMsgId: `inbox-${i}`, type: "text", text: `about item ${i}` });
				await sleep(5);
			}
			const first = await c.call("conversations.list", { limit: 2 });
			assert.deepEqual(first.items.map((x: { id: string }) => x.id), [ids[4], ids[3]]);
			assert.ok(first.next);
			const second = await c.call("conversations.list", { limit: 10, before: first.next });
			assert.deepEqual(second.items.map((x: { id: string }) => x.id), [ids[2], ids[1], ids[0]]);
			assert.equal(second.next, undefined);
			assert.equal(second.items[0]?.lastMessage?.text, "about item 2");
		} finally {
			c.close();
		}
	});

	it("typing reaches the other side, expires on its own, and clears at once on disconnect", async () => {
		const typedAt = Date.now();
		await buyerPhone.call("typing.set", { conversationId, typing: true });
		const started = await seller.arrivalOf("typing", (t) => t.userId === "buyer-1" && t.typing === true);
		assert.equal(started.payload.expiresInMs, TYPING_TTL_MS, "the indicator says when to stop showing it without news");
		const expired = await seller.arrivalOf("typing", (t) => t.userId === "buyer-1" && t.typing === false, TYPING_TTL_MS + 2500, started);
		// Measured from the call, not from the "typing" event: the TTL starts when the call reaches the
		// server, and the event's own fan-out delay (once ~400 ms on a cold server) would blur the bound.
		const shownFor = expired.at - typedAt;
		assert.ok(shownFor >= TYPING_TTL_MS - 10, `typing expired ${shownFor} ms after it was set, before the ${TYPING_TTL_MS} ms TTL`);

		const tb = await devToken(server.url, "buyer-1");
		const tablet = await RawClient.connect(at(0), tb, "tablet");
		const before = seller.of("typing").length;
		await tablet.call("typing.set", { conversationId, typing: true });
		await seller.waitFor("typing", (t) => t.typing === true && seller.of("typing").indexOf(t) >= before);
		const startedAt = Date.now();
		tablet.close();
		await seller.waitFor("typing", (t) => t.typing === false && seller.of("typing").indexOf(t) > before);
		assert.ok(Date.now() - startedAt < 500, "cleared on disconnect, well before the TTL");
	});

	it("while the user keeps typing, the others are told again within each TTL, so their indicator never lapses", async () => {
		const since = seller.events.length;
		const until = Date.now() + 2.5 * TYPING_TTL_MS;
		while (Date.now() < until) {
			await buyerPhone.call("typing.set", { conversationId, typing: true });
			await sleep(TYPING_TTL_MS / 6);
		}
		const told = seller.events.slice(since).filter((e) => e.event === "typing" && e.payload.userId === "buyer-1");
		assert.ok(told.every((e) => e.payload.typing === true), "no false while typing goes on");
		assert.ok(told.length >= 3 && told.length <= 8, `re-announced ${told.length} times in 2.5 TTLs (refreshes alone are not fanned out)`);
		const gaps = told.slice(1).map((e, i) => e.at - told[i]!.at);
		assert.ok(gaps.every((g) => g < TYPING_TTL_MS), `each announcement within a TTL of the last: ${gaps.join(", ")} ms`);
		await buyerPhone.call("typing.set", { conversationId, typing: false });
		await seller.arrivalOf("typing", (t) => t.userId === "buyer-1" && t.typing === false, 5000, told[told.length - 1]);
	});

	it("presence: online and offline are seen by contacts (both have written in a shared conversation), and by no one else", async () => {
		const ts = await devToken(server.url, "seller-9");
		const tb = await devToken(server.url, "buyer-9");
		const watcher = await RawClient.connect(at(1), ts, "s9");
		const first = await RawClient.connect(server.url, tb, "b9");
		const stranger = await RawClient.connect(server.url, await devToken(server.url, "stranger"), "x");
		try {
			const { id } = await first.call("conversations.open", { listingId: "chair", sellerId: "seller-9" });
			// Presence is shared once both have written: opening a conversation alone shares nothing.
			assert.deepEqual(await first.call("presence.get", { userIds: ["seller-9"] }), []);
			await first.call("messages.send", { conversationId: id, clientMsgId: "p1", type: "text", text: "still for sale?" });
			await watcher.call("messages.send", { conversationId: id, clientMsgId: "p2", type: "text", text: "yes" });
			first.close();
			const offline = await watcher.waitFor("presence", (p) => p.userId === "buyer-9" && p.online === false);
			assert.ok(Date.parse(offline.lastSeenAt) > Date.now() - 5000);
			const [state] = await watcher.call("presence.get", { userIds: ["buyer-9"] });
			assert.deepEqual(state, { userId: "buyer-9", online: false, lastSeenAt: offline.lastSeenAt });

			const again = await RawClient.connect(at(0), tb, "b9-laptop");
			await watcher.waitFor("presence", (p) => p.userId === "buyer-9" && p.online === true);
			assert.equal((await watcher.call("presence.get", { userIds: ["buyer-9"] }))[0].online, true);
			again.close();

			assert.deepEqual(await stranger.call("presence.get", { userIds: ["buyer-9", "seller-9"] }), []);
			assert.equal(stranger.of("presence").filter((p) => p.userId === "buyer-9").length, 0);
		} finally {
			for (const c of [watcher, first, stranger]) c.close();
		}
	});

	it("search finds words in the caller's own conversations, accent- and case-insensitively, with a safe highlight", async () => {
		await buyerPhone.call("messages.send", { conversationId, clientMsgId: "s-1", type: "text", text: "Meet at the Café <b>Rouge</b>, I pay by IBAN" });
		// An index fed through the outbox (Elasticsearch) shows a message within moments, not at once.
		let hits: any[] = [];
		for (const deadline = Date.now() + 10_000; hits.length === 0 && Date.now() < deadline; await sleep(100)) {
			hits = (await seller.call("search.messages", { q: "cafe" })).hits;
		}
		assert.equal(hits.length, 1);
		assert.equal(hits[0].message.clientMsgId, "s-1");
		assert.match(hits[0].highlight, /<mark>Café<\/mark>/);
		assert.ok(!hits[0].highlight.includes("<b>"), "message HTML is escaped");
		const prefix = await seller.call("search.messages", { q: "iba" });
		assert.equal(prefix.hits.length, 1);
		const scoped = await seller.call("search.messages", { q: "blue bike", conversationId });
		assert.ok(scoped.hits.length >= 1);
	});

	/** Search hits for `q` (the index may be fed asynchronously): waits until `done` holds. */
	const searchUntil = async (q: string, done: (ids: string[]) => boolean): Promise<string[]> => {
		let ids: string[] = [];
		for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(100)) {
			ids = (await seller.call("search.messages", { q, conversationId })).hits.map((h: { message: Message }) => h.message.id);
			if (done(ids)) break;
		}
		return ids;
	};

	it("the sender edits and deletes a message: every other device hears it, history and search follow, nobody else may", async () => {
		const sent = await buyerPhone.call("messages.send", { conversationId, clientMsgId: "edit-me", type: "text", text: "Pickup on Tuesday at the tram stop" });
		await seller.waitFor("message.new", (m) => m.id === sent.id);
		assert.deepEqual(await searchUntil("tram", (ids) => ids.includes(sent.id)), [sent.id]);

		const edited = await buyerPhone.call("messages.edit", { conversationId, seq: sent.seq, text: "Pickup on Wednesday at the bakery" });
		assert.deepEqual([edited.id, edited.seq, edited.text], [sent.id, sent.seq, "Pickup on Wednesday at the bakery"]);
		assert.ok(edited.editedAt && edited.changeSeq! >= 1);
		for (const device of [seller, buyerLaptop]) {
			const update = await device.waitFor("message.updated", (m) => m.id === sent.id && m.changeSeq === edited.changeSeq);
			assert.deepEqual(update, edited);
		}
		const [inHistory] = await seller.call("messages.history", { conversationId, afterSeq: sent.seq - 1, limit: 1 });
		assert.equal(inHistory.text, edited.text);
		assert.deepEqual(await searchUntil("bakery", (ids) => ids.includes(sent.id)), [sent.id], "the new words are found");
		assert.deepEqual(await searchUntil("tram", (ids) => !ids.includes(sent.id)), [], "the old ones are not");

		await expectError(seller.call("messages.edit", { conversationId, seq: sent.seq, text: "hijacked" }), "FORBIDDEN", 403);
		await expectError(seller.call("messages.delete", { conversationId, seq: sent.seq }), "FORBIDDEN", 403);
		await expectError(buyerPhone.call("messages.edit", { conversationId, seq: 99_999, text: "nothing there" }), "NOT_FOUND", 404);
		await expectError(buyerPhone.call("messages.edit", { conversationId, seq: sent.seq, text: " \u200b " }), "VALIDATION_ERROR", 422);
		await expectError(buyerPhone.call("messages.edit", { conversationId, seq: sent.seq, text: "a".repeat(4001) }), "PAYLOAD_TOO_LARGE", 413);
		await expectError(buyerPhone.call("messages.edit", { conversationId, seq: 0, text: "x" }), "VALIDATION_ERROR", 422);
		await expectError(buyerPhone.call("messages.delete", { conversationId, seq: "1" } as never), "VALIDATION_ERROR", 422);

		const deleted = await buyerPhone.call("messages.delete", { conversationId, seq: sent.seq });
		assert.deepEqual([deleted.text, deleted.attachments, Boolean(deleted.deletedAt), deleted.changeSeq], ["", [], true, edited.changeSeq! + 1]);
		await seller.waitFor("message.updated", (m) => m.id === sent.id && m.deletedAt !== undefined);
		assert.deepEqual(await searchUntil("bakery", (ids) => !ids.includes(sent.id)), [], "a deleted message is not found");
		await expectError(buyerPhone.call("messages.edit", { conversationId, seq: sent.seq, text: "undo" }), "CONFLICT", 409);
		const again = await buyerPhone.call("messages.delete", { conversationId, seq: sent.seq });
		assert.equal(again.changeSeq, deleted.changeSeq, "deleting again changes nothing");
	});

	it("a device offline during edits and deletes catches up on each through sync, once, as it stands", async () => {
		const token = await devToken(server.url, "buyer-1");
		const tablet = await RawClient.connect(at(0), token, "tablet-edits");
		const first = await buyerPhone.call("messages.send", { conversationId, clientMsgId: "off-1", type: "text", text: "first draft" });
		const second = await buyerPhone.call("messages.send", { conversationId, clientMsgId: "off-2", type: "text", text: "to be taken back" });
		// The tablet is up to date: messages and changes so far.
		const cursors: Record<string, number> = {};
		const changeCursors: Record<string, number> = {};
		for (let more = true; more; ) {
			const page = await tablet.call("messages.sync", { cursors, changeCursors });
			for (const c of page.conversations) cursors[c.id] ??= 0;
			Object.assign(changeCursors, page.changesUpTo);
			for (const m of page.messages) cursors[m.conversationId] = m.seq;
			more = page.more;
		}
		assert.equal(cursors[conversationId], second.seq);
		const settled = await tablet.call("messages.sync", { cursors, changeCursors });
		assert.deepEqual(settled.changes, [], "nothing changed since");
		tablet.close();

		await buyerPhone.call("messages.edit", { conversationId, seq: first.seq, text: "second draft" });
		const finalEdit = await buyerPhone.call("messages.edit", { conversationId, seq: first.seq, text: "final draft" });
		const deleted = await buyerPhone.call("messages.delete", { conversationId, seq: second.seq });

		const back = await RawClient.connect(at(0), token, "tablet-edits");
		try {
			const page = await back.call("messages.sync", { cursors, changeCursors });
			assert.deepEqual(page.messages, [], "no new messages");
			assert.deepEqual(page.changes, [finalEdit, deleted], "each changed message once, as it stands, in change order");
			assert.equal(page.changesUpTo?.[conversationId], deleted.changeSeq, "the cursor to keep");
			const without = await back.call("messages.sync", { cursors });
			assert.equal(without.changes, undefined, "a 1.0 client that sends no change cursors gets no changes field");
		} finally {
			back.close();
		}
	});

	it("a non-member cannot read, send, type, search or see receipts of a conversation", async () => {
		const intruder = await RawClient.connect(server.url, await devToken(server.url, "intruder"), "i");
		try {
			await expectError(intruder.call("conversations.get", { conversationId }), "FORBIDDEN", 403);
			await expectError(intruder.call("messages.history", { conversationId }), "FORBIDDEN", 403);
			await expectError(intruder.call("messages.send", { conversationId, clientMsgId: "evil", type: "text", text: "hi" }), "FORBIDDEN", 403);
			await expectError(intruder.call("typing.set", { conversationId, typing: true }), "FORBIDDEN", 403);
			await expectError(intruder.call("messages.edit", { conversationId, seq: 1, text: "mine now" }), "FORBIDDEN", 403);
			await expectError(intruder.call("messages.delete", { conversationId, seq: 1 }), "FORBIDDEN", 403);
			await expectError(intruder.call("receipts.mark", { conversationId, seq: 1, state: "read" }), "FORBIDDEN", 403);
			await expectError(intruder.call("search.messages", { q: "bike", conversationId }), "FORBIDDEN", 403);
			const everywhere = await intruder.call("search.messages", { q: "bike" });
			assert.deepEqual(everywhere.hits, []);
			const sync = await intruder.call("messages.sync", { cursors: { [conversationId]: 0 } });
			assert.deepEqual(sync.messages, []);
			assert.deepEqual(sync.receipts, []);
			assert.equal(intruder.of("message.new").length + intruder.of("typing").length + intruder.of("receipt.updated").length, 0);
		} finally {
			intruder.close();
		}
	});

	it("bad input gets {code, type, message} and changes nothing", async () => {
		const before = await buyerPhone.call("messages.history", { conversationId, limit: 200 });
		await expectError(buyerPhone.call("messages.send", { conversationId, type: "text", text: "no id" }), "VALIDATION_ERROR", 422);
		await expectError(buyerPhone.call("messages.send", { conversationId, clientMsgId: "x1", type: "sticker", text: "x" }), "VALIDATION_ERROR", 422);
		await expectError(buyerPhone.call("messages.send", { conversationId, clientMsgId: "x2", type: "text", text: "   " }), "VALIDATION_ERROR", 422);
		await expectError(buyerPhone.call("messages.send", { conversationId, clientMsgId: "x3", type: "text", text: "a".repeat(4001) }), "PAYLOAD_TOO_LARGE", 413);
		await expectError(buyerPhone.call("messages.send", "not an object"), "VALIDATION_ERROR", 422);
		await expectError(buyerPhone.call("messages.history", { conversationId, limit: 201 }), "VALIDATION_ERROR", 422);
		await expectError(buyerPhone.call("messages.history", { conversationId: "c_doesnotexist" }), "NOT_FOUND", 404);
		await expectError(buyerPhone.call("receipts.mark", { conversationId, seq: -1, state: "read" }), "VALIDATION_ERROR", 422);
		await expectError(buyerPhone.call("receipts.mark", { conversationId, seq: "1", state: "read" }), "VALIDATION_ERROR", 422);
		await expectError(buyerPhone.call("conversations.open", { listingId: "x", sellerId: "buyer-1" }), "VALIDATION_ERROR", 422);
		await expectError(buyerPhone.call("conversations.list", { before: "garbage" }), "VALIDATION_ERROR", 422);
		await expectError(buyerPhone.call("messages.sync", { cursors: { a: -5 } }), "VALIDATION_ERROR", 422);
		const after = await buyerPhone.call("messages.history", { conversationId, limit: 200 });
		assert.deepEqual(after, before);
	});

	it("hostile packet shapes are refused with VALIDATION_ERROR and never reach a service", async () => {
		const raw = (...args: unknown[]) =>
			new Promise<any>((resolve) => buyerPhone.socket.emit("call", ...args, (err: unknown, res: unknown) => resolve(err ?? res)));
		const hostile: unknown[][] = [
			[{ toString: "x" }, {}],
			["conversations.list", { limit: { toString: 1 } }],
			["search.messages", { q: [{ toString: 1 }] }],
			["messages.send", { conversationId, clientMsgId: "lone", type: "text", text: "\ud800".repeat(10) }],
			["conversations.list", {}, { extra: true }],
			["conversations.list", JSON.parse("[".repeat(40) + "]".repeat(40))],
			["conversations.list", JSON.parse('{"a":'.repeat(40) + "1" + "}".repeat(40))],
		];
		for (const args of hostile) {
			const err = await raw(...args);
			assert.equal(err?.type, "VALIDATION_ERROR", `expected VALIDATION_ERROR for ${JSON.stringify(args).slice(0, 80)}`);
		}
		const res = await fetch(`${server.url}/api/health`);
		assert.equal(res.status, 200, "still alive");
	});

	it("a call with no params at all is answered, not crashed on", async () => {
		const res = await new Promise<{ err: unknown; res: { items: unknown[] } }>((resolve) =>
			buyerPhone.socket.emit("call", "conversations.list", (err: unknown, res: { items: unknown[] }) => resolve({ err, res })),
		);
		assert.equal(res.err, null);
		assert.ok(Array.isArray(res.res.items));
		await expectError(
			new Promise((resolve, reject) => buyerPhone.socket.emit("call", "messages.send", (err: unknown, r: unknown) => (err ? reject(err) : resolve(r)))),
			"VALIDATION_ERROR",
			422,
		);
	});

	it("only contract actions are callable from a socket", async () => {
		for (const action of ["gateway.broadcast", "gateway.call", "gateway.getClients", "gateway.rest", "$node.list", "$node.services", "gateway.deliver", "presence.sessionsOf", "conversations.members", "messages.nope"]) {
			const err = await expectError(buyerPhone.call(action as string, {}), "NOT_FOUND", 404);
			assert.ok(!JSON.stringify(err).includes(server.url), "no internals leak");
		}
		await expectError(buyerPhone.call(42 as unknown as string, {}), "VALIDATION_ERROR", 422);
	});

	it("a bad or missing token fails the connection with UNAUTHORIZED", async () => {
		for (const token of ["", "not-a-jwt", (await devToken(server.url, "x")).slice(0, -3) + "abc"]) {
			await assert.rejects(RawClient.connect(server.url, token, "d"), (err: Error & { data?: { type: string; code: number } }) => {
				assert.equal(err.message, "UNAUTHORIZED");
				assert.equal(err.data?.type, "UNAUTHORIZED");
				assert.equal(err.data?.code, 401);
				return true;
			});
		}
	});

	it("the server survives all of that", async () => {
		const res = await fetch(`${server.url}/api/health`);
		assert.equal(res.status, 200);
		assert.equal(server.process.exitCode, null);
	});
});
}
