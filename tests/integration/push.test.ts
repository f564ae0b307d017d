/**
 * Push notifications end to end: a real server sends through firebase-admin to
 * a local FCM stand-in (tests/support/fcm-stand-in.ts) that speaks the OAuth2
 * token exchange and FCM HTTP v1, as Google's endpoints would.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startFcmStandIn, type FcmStandIn } from "../support/fcm-stand-in";
import { RawClient, devToken, expectError, sleep, startServer, until, type ServerHandle } from "../support/server";

describe("push notifications", () => {
	let fcm: FcmStandIn;
	let server: ServerHandle;
	before(async () => {
		fcm = await startFcmStandIn();
		server = await startServer(fcm.env);
	});
	after(async () => {
		await server?.stop();
		await fcm?.close();
	});

	let listing = 0;
	/** A buyer and a seller with a conversation, each device connected and (if given a token) registered. */
	async function conversationBetween(buyer: string, seller: string) {
		const [buyerToken, sellerToken] = await Promise.all([devToken(server.url, buyer), devToken(server.url, seller)]);
		const device = async (token: string, deviceId: string, fcmToken?: string) => {
			const client = await RawClient.connect(server.url, token, deviceId);
			if (fcmToken) await client.call("push.register", { token: fcmToken, platform: "android" });
			return client;
		};
		const buyerLaptop = await device(buyerToken, "laptop");
		const conversation = await buyerLaptop.call("conversations.open", { listingId: `push-${++listing}`, sellerId: seller, listingTitle: "Blue bike" });
		return { buyerToken, sellerToken, device, buyerLaptop, conversation };
	}

	const sendsTo = (token: string) => fcm.sends.filter((s) => s.message.token === token);

	it("a member's offline device gets the message with the server's unread, keyed by conversation; live devices and the sender get none", async () => {
		const { buyerToken, sellerToken, device, buyerLaptop, conversation } = await conversationBetween("pu-bea", "pu-sam");
		(await device(buyerToken, "phone", "tok-bea-phone")).close();
		await device(buyerToken, "tablet", "tok-bea-tablet"); // stays connected
		(await device(sellerToken, "old-phone", "tok-sam-old")).close();
		const seller = await device(sellerToken, "desk");

		await seller.call("messages.send", { conversationId: conversation.id, clientMsgId: "pu-1", type: "text", text: "Still for sale?" });
		await seller.call("messages.send", { conversationId: conversation.id, clientMsgId: "pu-2", type: "text", text: "It is  blue,\nwith a bell" });
		await fcm.waitFor(() => sendsTo("tok-bea-phone").length === 2);
		const [first, second] = sendsTo("tok-bea-phone").map((s) => s.message);
		assert.deepEqual(first!.notification, { title: "Blue bike", body: "Still for sale?" });
		assert.equal(second!.notification?.body, "It is blue, with a bell");
		assert.deepEqual(
			[first!.data, second!.data].map((d) => [d?.type, d?.conversationId, d?.seq, d?.unread]),
			[["message.new", conversation.id, "1", "1"], ["message.new", conversation.id, "2", "2"]],
			"the unread every device shows",
		);
		// FCM's wire format: collapse and replace per conversation on every platform.
		assert.deepEqual(second!.android, { priority: "high", collapse_key: conversation.id, notification: { tag: conversation.id, notification_count: 2 } });
		assert.deepEqual((second!.apns as { headers: unknown }).headers, { "apns-collapse-id": conversation.id });
		await sleep(300);
		assert.deepEqual(sendsTo("tok-bea-tablet"), [], "a connected device gets the live event, not a push");
		assert.deepEqual(sendsTo("tok-sam-old"), [], "nobody is notified of their own message");
		const summary = (await buyerLaptop.call("conversations.list", {})).items.find((c) => c.id === conversation.id);
		assert.equal(summary?.unread, 2);
	});

	it("reading on one device retracts the push on the others: a silent update with unread 0", async () => {
		const { buyerToken, sellerToken, device, buyerLaptop, conversation } = await conversationBetween("rd-bea", "rd-sam");
		(await device(buyerToken, "phone", "tok-rd-phone")).close();
		const seller = await device(sellerToken, "desk");
		const sent = await seller.call("messages.send", { conversationId: conversation.id, clientMsgId: "rd-1", type: "text", text: "Hello" });
		await fcm.waitFor(() => sendsTo("tok-rd-phone").length === 1);
		await buyerLaptop.call("receipts.mark", { conversationId: conversation.id, seq: sent.seq, state: "read" });
		await fcm.waitFor(() => sendsTo("tok-rd-phone").length === 2);
		const retraction = sendsTo("tok-rd-phone")[1]!.message;
		assert.deepEqual(retraction.data, { type: "conversation.read", conversationId: conversation.id, unread: "0" });
		assert.equal(retraction.notification, undefined, "silent: nothing to show");
		assert.equal((retraction.android as { collapse_key?: string }).collapse_key, conversation.id);
	});

	it("a token FCM calls gone is forgotten: it is tried once, never again", async () => {
		const { buyerToken, sellerToken, device, conversation } = await conversationBetween("gn-bea", "gn-sam");
		(await device(buyerToken, "phone", "tok-gone")).close();
		fcm.goneTokens.add("tok-gone");
		const seller = await device(sellerToken, "desk");
		await seller.call("messages.send", { conversationId: conversation.id, clientMsgId: "gn-1", type: "text", text: "one" });
		await until("the first attempt", () => fcm.attempts.some((a) => a.token === "tok-gone"));
		await seller.call("messages.send", { conversationId: conversation.id, clientMsgId: "gn-2", type: "text", text: "two" });
		await seller.call("messages.send", { conversationId: conversation.id, clientMsgId: "gn-3", type: "text", text: "three" });
		await sleep(500);
		assert.deepEqual(fcm.attempts.filter((a) => a.token === "tok-gone").map((a) => a.status), [404]);
	});

	it("FCM unavailable for a while: the push still arrives, once", async () => {
		const { buyerToken, sellerToken, device, conversation } = await conversationBetween("un-bea", "un-sam");
		(await device(buyerToken, "phone", "tok-unavailable")).close();
		const seller = await device(sellerToken, "desk");
		fcm.failNext(8);
		await seller.call("messages.send", { conversationId: conversation.id, clientMsgId: "un-1", type: "text", text: "patience" });
		await fcm.waitFor(() => sendsTo("tok-unavailable").length === 1, 20_000);
		assert.ok(fcm.attempts.filter((a) => a.token === "tok-unavailable" && a.status === 503).length >= 1, "it did meet the outage");
		await sleep(300);
		assert.equal(sendsTo("tok-unavailable").length, 1);
	});

	it("register checks its input and needs a device id; unregister stops the pushes", async () => {
		const { buyerToken, sellerToken, device, conversation } = await conversationBetween("rg-bea", "rg-sam");
		const phone = await device(buyerToken, "phone");
		await expectError(phone.call("push.register", { token: "" }), "VALIDATION_ERROR", 422);
		await expectError(phone.call("push.register", { token: "has space" }), "VALIDATION_ERROR", 422);
		await expectError(phone.call("push.register", { token: "t", platform: "symbian" } as never), "VALIDATION_ERROR", 422);
		await expectError(phone.call("push.register", { token: "x".repeat(5000) }), "VALIDATION_ERROR", 422);
		const anonymous = await RawClient.connect(server.url, buyerToken, undefined as unknown as string);
		await expectError(anonymous.call("push.register", { token: "tok-anon" }), "VALIDATION_ERROR", 422);
		anonymous.close();
		await phone.call("push.register", { token: "tok-rg" });
		await phone.call("push.unregister", {});
		phone.close();
		const seller = await device(sellerToken, "desk");
		await seller.call("messages.send", { conversationId: conversation.id, clientMsgId: "rg-1", type: "text", text: "anyone?" });
		await sleep(500);
		assert.deepEqual(fcm.attempts.filter((a) => a.token === "tok-rg" || a.token === "tok-anon"), []);
	});
});
