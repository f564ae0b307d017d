/**
 * The behaviour every ChatStore engine must have (design.md invariants 1-6 at
 * the storage level). Each engine's test file calls this with a factory.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { conversationIdFor, newMessageId } from "../../lib/ids";
import type { AppendRequest, ChatStore } from "../../lib/store/chat-store";
import { unreadCount } from "../../lib/unread";

export function storeBehaviour(engine: string, create: () => Promise<ChatStore>): void {
	describe(`ChatStore behaviour: ${engine}`, () => {
		let store: ChatStore;
		const now = Date.now();
		const open = (buyerId: string, sellerId: string, listingId: string) =>
			store.openConversation({ id: conversationIdFor("test-secret", buyerId, sellerId, listingId), listingId, listingTitle: null, buyerId, sellerId, now });
		const send = (conversationId: string, senderId: string, clientMsgId: string, text = clientMsgId): AppendRequest => ({
			id: newMessageId(),
			conversationId,
			senderId,
			clientMsgId,
			type: "text",
			text,
			attachments: [],
			now: Date.now(),
		});

		before(async () => {
			store = await create();
			await store.open();
		});
		after(async () => {
			await store?.close();
		});

		it("keeps one random deployment secret forever", async () => {
			const secret = await store.deploymentSecret();
			assert.ok(secret.length >= 32);
			assert.equal(await store.deploymentSecret(), secret);
		});

		it("opening a conversation twice creates it once, with a buyer and a seller", async () => {
			const first = await open("b1", "s1", "l1");
			const second = await open("b1", "s1", "l1");
			assert.equal(first.created, true);
			assert.equal(second.created, false);
			assert.equal(second.conversation.id, first.conversation.id);
			const members = await store.members(first.conversation.id);
			assert.deepEqual(members.map((m) => [m.userId, m.role]).sort(), [["b1", "buyer"], ["s1", "seller"]]);
		});

		it("concurrent appends get dense seq 1..N in one conversation", async () => {
			const { conversation } = await open("b2", "s2", "l2");
			const results = await Promise.all(Array.from({ length: 100 }, (_, i) => store.appendMessage(send(conversation.id, i % 2 ? "b2" : "s2", `dense-${i}`))));
			assert.deepEqual(results.map((r) => r.message.seq).sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i + 1));
			assert.equal((await store.getConversation(conversation.id))?.lastSeq, 100);
		});

		it("(sender, clientMsgId) is unique: a retry returns the original", async () => {
			const { conversation } = await open("b3", "s3", "l3");
			const first = await store.appendMessage(send(conversation.id, "b3", "same", "original text"));
			const again = await store.appendMessage(send(conversation.id, "b3", "same", "changed text"));
			assert.equal(again.duplicate, true);
			assert.deepEqual(again.message, first.message);
			assert.equal((await store.history(conversation.id, { limit: 10 })).length, 1);
		});

		it("appending to a conversation that does not exist is NOT_FOUND and writes nothing", async () => {
			await assert.rejects(store.appendMessage(send("c_missing", "b3", "orphan")), (e: { type: string }) => e.type === "NOT_FOUND");
		});

		it("history pages by seq; messagesAfter returns exactly the gap", async () => {
			const { conversation } = await open("b4", "s4", "l4");
			for (let i = 1; i <= 10; i++) await store.appendMessage(send(conversation.id, "b4", `h${i}`));
			assert.deepEqual((await store.history(conversation.id, { limit: 3 })).map((m) => m.seq), [8, 9, 10]);
			assert.deepEqual((await store.history(conversation.id, { beforeSeq: 8, limit: 3 })).map((m) => m.seq), [5, 6, 7]);
			assert.deepEqual((await store.history(conversation.id, { afterSeq: 2, beforeSeq: 6, limit: 10 })).map((m) => m.seq), [3, 4, 5]);
			assert.deepEqual((await store.messagesAfter(conversation.id, 7, 100)).map((m) => m.seq), [8, 9, 10]);
			assert.deepEqual((await store.messagesAfter(conversation.id, 0, 4)).map((m) => m.seq), [1, 2, 3, 4]);
		});

		it("watermarks only move forward, never past the last message, and read implies delivered", async () => {
			const { conversation } = await open("b5", "s5", "l5");
			for (let i = 1; i <= 5; i++) await store.appendMessage(send(conversation.id, "b5", `w${i}`));
			const [r1] = await store.saveWatermarks([{ conversationId: conversation.id, userId: "s5", delivered: 4, read: 2 }]);
			assert.deepEqual([r1?.member.delivered, r1?.member.read, r1?.changed, r1?.readChanged], [4, 2, true, true]);
			const [r2] = await store.saveWatermarks([{ conversationId: conversation.id, userId: "s5", delivered: 1, read: 1 }]);
			assert.deepEqual([r2?.member.delivered, r2?.member.read, r2?.changed, r2?.readChanged], [4, 2, false, false]);
			const [delivered] = await store.saveWatermarks([{ conversationId: conversation.id, userId: "s5", delivered: 5, read: 0 }]);
			assert.deepEqual([delivered?.changed, delivered?.readChanged], [true, false]);
			const [r3] = await store.saveWatermarks([{ conversationId: conversation.id, userId: "s5", delivered: 0, read: 99 }]);
			assert.deepEqual([r3?.member.delivered, r3?.member.read, r3?.readChanged], [5, 5, true]);
			const [none] = await store.saveWatermarks([{ conversationId: conversation.id, userId: "stranger", delivered: 1, read: 1 }]);
			assert.equal(none, null);
		});

		it("unread counts messages after my read mark that I did not send", async () => {
			const { conversation } = await open("b6", "s6", "l6");
			for (const [who, id] of [["b6", "1"], ["b6", "2"], ["s6", "3"], ["b6", "4"]] as const) await store.appendMessage(send(conversation.id, who, `u${id}`));
			const unreadOf = async (userId: string) => {
				const entry = await store.inboxEntry(userId, conversation.id);
				return unreadCount(entry!.conversation.lastSeq, entry!.member);
			};
			assert.equal(await unreadOf("s6"), 3);
			assert.equal(await unreadOf("b6"), 1);
			await store.saveWatermarks([{ conversationId: conversation.id, userId: "s6", delivered: 2, read: 2 }]);
			assert.equal(await unreadOf("s6"), 1);
			await store.saveWatermarks([{ conversationId: conversation.id, userId: "b6", delivered: 4, read: 4 }]);
			assert.equal(await unreadOf("b6"), 0);
		});

		it("the inbox is newest activity first and pages without overlap", async () => {
			const ids: string[] = [];
			for (let i = 0; i < 5; i++) {
				const { conversation } = await open("inbox-user", `seller-${i}`, "l");
				ids.push(conversation.id);
				await store.appendMessage({ ...send(conversation.id, "inbox-user", `i${i}`), now: now + 1000 + i });
			}
			const page1 = await store.inbox("inbox-user", 2);
			const page2 = await store.inbox("inbox-user", 10, page1.next);
			assert.deepEqual([...page1.entries, ...page2.entries].map((e) => e.conversation.id), [...ids].reverse());
			assert.equal(page2.next, undefined);
			assert.equal(page1.entries[0]?.lastMessage?.clientMsgId, "i4");
		});

		it("the sender edits and deletes; reads show the message as it stands; changes are numbered 1, 2, 3 per conversation", async () => {
			const { conversation } = await open("ed-b", "ed-s", "ed-l");
			for (const i of [1, 2, 3]) await store.appendMessage(send(conversation.id, i === 3 ? "ed-s" : "ed-b", `ed-${i}`, `text ${i}`));
			const edited = await store.changeMessage({ conversationId: conversation.id, seq: 2, editorId: "ed-b", text: "text 2, fixed", now: now + 1 });
			assert.equal(edited.changed, true);
			assert.deepEqual([edited.message.seq, edited.message.text, edited.message.changeSeq, edited.message.editedAt], [2, "text 2, fixed", 1, new Date(now + 1).toISOString()]);
			const deleted = await store.changeMessage({ conversationId: conversation.id, seq: 1, editorId: "ed-b", text: null, now: now + 2 });
			assert.deepEqual([deleted.message.text, deleted.message.attachments, deleted.message.changeSeq, deleted.message.deletedAt], ["", [], 2, new Date(now + 2).toISOString()]);
			await store.changeMessage({ conversationId: conversation.id, seq: 2, editorId: "ed-b", text: "text 2, final", now: now + 3 });

			const history = await store.history(conversation.id, { limit: 10 });
			assert.deepEqual(history.map((m) => [m.seq, m.text, m.changeSeq ?? 0]), [[1, "", 2], [2, "text 2, final", 3], [3, "text 3", 0]]);
			assert.equal((await store.getConversation(conversation.id))?.lastSeq, 3, "a change takes no seq");
			assert.equal((await store.getConversation(conversation.id))?.lastChangeSeq, 3);
			assert.equal((await store.memberships("ed-b")).find((m) => m.conversationId === conversation.id)?.lastChangeSeq, 3);

			const changed = (after: number, upto: number, limit = 10) =>
				store.changesAfter(conversation.id, after, upto, limit).then((p) => ({ got: p.messages.map((m) => [m.seq, m.changeSeq]), through: p.through, upTo: p.upTo }));
			assert.deepEqual(await changed(0, 3), { got: [[1, 2], [2, 3]], through: [2, 3], upTo: 3 }, "each changed message once, as it stands, in change order");
			assert.deepEqual(await changed(2, 3), { got: [[2, 3]], through: [3], upTo: 3 });
			assert.deepEqual(await changed(0, 1), { got: [[1, 2]], through: [2], upTo: 3 }, "only messages the device holds; the rest come fresh");
			assert.deepEqual(await changed(3, 3), { got: [], through: [], upTo: 3 });
			assert.deepEqual(await changed(0, 3, 1), { got: [[1, 2]], through: [2], upTo: 2 }, "at most limit, and the cursor stops there");
		});

		it("only the sender changes a message, a deleted one stays deleted, and a repeat changes nothing", async () => {
			const { conversation } = await open("ec-b", "ec-s", "ec-l");
			await store.appendMessage(send(conversation.id, "ec-b", "ec-1", "mine"));
			const change = (seq: number, editorId: string, text: string | null) => store.changeMessage({ conversationId: conversation.id, seq, editorId, text, now });
			await assert.rejects(change(1, "ec-s", "not yours"), (e: { type: string }) => e.type === "FORBIDDEN");
			await assert.rejects(change(7, "ec-b", "nothing there"), (e: { type: string }) => e.type === "NOT_FOUND");
			const same = await change(1, "ec-b", "mine");
			assert.deepEqual([same.changed, same.message.changeSeq], [false, undefined], "the same text is no change");
			assert.equal((await change(1, "ec-b", null)).changed, true);
			const again = await change(1, "ec-b", null);
			assert.deepEqual([again.changed, again.message.changeSeq], [false, 1], "deleting twice is one change");
			await assert.rejects(change(1, "ec-b", "back from the dead"), (e: { type: string }) => e.type === "CONFLICT");
			assert.equal((await store.getConversation(conversation.id))?.lastChangeSeq, 1, "refused changes take no number");
			const [entry] = (await store.inbox("ec-b", 5)).entries.filter((e) => e.conversation.id === conversation.id);
			assert.deepEqual([entry?.lastMessage?.text, Boolean(entry?.lastMessage?.deletedAt)], ["", true], "the inbox preview shows the deletion");
		});

		it("a conversation opened with a seller reaches the seller's inbox and memberships only with its first message", async () => {
			const { conversation } = await open("hid-buyer", "hid-seller", "hid-listing");
			assert.deepEqual((await store.memberships("hid-buyer")).map((m) => m.conversationId), [conversation.id], "the buyer sees what they opened");
			assert.deepEqual(await store.memberships("hid-seller"), []);
			assert.deepEqual((await store.inbox("hid-seller", 10)).entries, []);
			await store.appendMessage({ ...send(conversation.id, "hid-buyer", "hid-1"), now: now + 5000 });
			const [membership] = await store.memberships("hid-seller");
			assert.deepEqual(membership, { conversationId: conversation.id, lastSeq: 1, lastChangeSeq: 0, lastActivityAt: now + 5000 });
			assert.deepEqual((await store.inbox("hid-seller", 10)).entries.map((e) => e.conversation.id), [conversation.id]);
		});

		it("memberships are the user's own; contacts are people who exchanged messages", async () => {
			const a = await open("c-user", "c-seller-a", "x");
			const b = await open("c-user", "c-seller-b", "y");
			await open("c-user", "c-seller-silent", "z");
			for (const [conversation, seller] of [[a, "c-seller-a"], [b, "c-seller-b"]] as const) {
				await store.appendMessage(send(conversation.conversation.id, "c-user", `hi-${seller}`));
				await store.appendMessage(send(conversation.conversation.id, seller, `re-${seller}`));
			}
			assert.equal((await store.memberships("c-user")).length, 3);
			assert.deepEqual((await store.contactsOf("c-user", 10)).sort(), ["c-seller-a", "c-seller-b"]);
			assert.deepEqual(await store.contactsOf("c-seller-a", 10), ["c-user"]);
			assert.deepEqual(await store.contactsOf("c-seller-silent", 10), [], "opening a conversation alone shares no presence");
		});
	});
}
