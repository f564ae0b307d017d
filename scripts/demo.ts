/**
 * `npm run demo`: a scripted buyer (phone + laptop) and seller chat through a
 * running Parley server, printing every event each device sees. Exits non-zero
 * if anything expected does not arrive. Server: PARLEY_URL (default http://localhost:3000).
 */
import { ParleyClient } from "../client";

const url = process.env.PARLEY_URL ?? `http://localhost:${process.env.PORT ?? 3000}`;
const run = Date.now().toString(36);
const buyerId = `demo-buyer-${run}`;
const sellerId = `demo-seller-${run}`;
const missing: string[] = [];

async function token(userId: string, name: string): Promise<string> {
	const res = await fetch(`${url}/api/dev/token`, {
		method: "POST",
		headers: { "content-type": "application/json" },
		body: JSON.stringify({ userId, name, role: "user" }),
	});
	if (!res.ok) throw new Error(`POST /api/dev/token answered ${res.status}: is the server running in development mode at ${url}?`);
	return ((await res.json()) as { token: string }).token;
}

/** A device that prints what it sees and can wait for a condition on what it has seen. */
function device(label: string, client: ParleyClient) {
	const seen: { event: string; data: any }[] = [];
	const log = (event: string, data: any, text: string) => {
		seen.push({ event, data });
		console.log(`${label.padEnd(14)} ${event.padEnd(13)} ${text}`);
	};
	const me = label.startsWith("buyer") ? buyerId : sellerId;
	client.on("message", (m) =>
		log("message", m, m.senderId === me ? `#${m.seq} mine, in the timeline once stored: "${m.text}"` : `#${m.seq} from ${m.senderId === buyerId ? "buyer" : "seller"}: "${m.text}"`),
	);
	client.on("receipt", (r) => r.userId !== me && log("receipt", r, `${r.userId === buyerId ? "buyer" : "seller"} delivered ${r.delivered}, read ${r.read}`));
	client.on("typing", (t) => log("typing", t, `${t.userId === buyerId ? "buyer" : "seller"} ${t.typing ? "is typing…" : "stopped typing"}`));
	client.on("conversation", (c) => log("conversation", c, `"${c.listingTitle}" unread ${c.unread}, last #${c.lastSeq}`));
	client.on("presence", (p) => log("presence", p, `${p.userId === buyerId ? "buyer" : "seller"} ${p.online ? "online" : "offline"}`));
	client.on("updated", (m) => log("updated", m, m.deletedAt ? `#${m.seq} was deleted` : `#${m.seq} now reads: "${m.text}"`));
	return {
		client,
		async expect(what: string, event: string, predicate: (data: any) => boolean, timeoutMs = 3000) {
			const deadline = Date.now() + timeoutMs;
			while (Date.now() < deadline) {
				if (seen.some((s) => s.event === event && predicate(s.data))) return;
				await new Promise((r) => setTimeout(r, 20));
			}
			missing.push(`${label}: ${what}`);
			console.log(`${label.padEnd(14)} MISSING       ${what}`);
		},
	};
}

const step = (text: string) => console.log(`\n— ${text}`);

async function main(): Promise<void> {
	const [buyerToken, sellerToken] = await Promise.all([token(buyerId, "Bea (buyer)"), token(sellerId, "Sam (seller)")]);
	const phone = device("buyer/phone", new ParleyClient({ url, token: buyerToken, deviceId: "phone" }));
	const laptop = device("buyer/laptop", new ParleyClient({ url, token: buyerToken, deviceId: "laptop" }));
	const seller = device("seller/phone", new ParleyClient({ url, token: sellerToken, deviceId: "phone" }));
	await Promise.all([phone.client.connect(), laptop.client.connect(), seller.client.connect()]);
	console.log(`connected to ${url} as ${buyerId} (2 devices) and ${sellerId}`);

	step("buyer opens a conversation about a listing");
	const conversation = await phone.client.call("conversations.open", { listingId: "bike-42", sellerId, listingTitle: "Blue city bike" });
	const conversationId = conversation.id;
	await laptop.expect("the buyer's laptop sees the new conversation", "conversation", (c) => c.id === conversationId);

	step("buyer types, then sends from the phone");
	await phone.client.call("typing.set", { conversationId, typing: true });
	await seller.expect("sees the buyer typing", "typing", (t) => t.typing === true);
	const first = await phone.client.send(conversationId, "Hi! Is the blue bike still available?");
	console.log(`buyer/phone    ack           #${first.seq} stored (single tick)`);
	await seller.expect("receives the message", "message", (m) => m.id === first.id);
	await laptop.expect("the buyer's laptop shows it too", "message", (m) => m.id === first.id);
	await seller.expect("unread is 1", "conversation", (c) => c.id === conversationId && c.unread === 1);
	await phone.expect("double tick: delivered to the seller", "receipt", (r) => r.userId === sellerId && r.delivered >= first.seq);

	step("seller reads and replies");
	await seller.client.markRead(conversationId, first.seq);
	await phone.expect("blue ticks: read by the seller", "receipt", (r) => r.userId === sellerId && r.read >= first.seq);
	await laptop.expect("blue ticks on the laptop too", "receipt", (r) => r.userId === sellerId && r.read >= first.seq);
	const reply = await seller.client.send(conversationId, "Yes! You can see it tomorrow at 10.");
	await phone.expect("buyer's phone receives the reply", "message", (m) => m.id === reply.id);
	await laptop.expect("buyer's laptop receives the reply", "message", (m) => m.id === reply.id);
	await laptop.expect("unread is 1 on the laptop", "conversation", (c) => c.id === conversationId && c.unread === 1);

	step("buyer reads on the laptop: the phone's unread clears too");
	await laptop.client.markRead(conversationId, reply.seq);
	await phone.expect("unread back to 0 on the phone", "conversation", (c) => c.id === conversationId && c.unread === 0);
	await seller.expect("read receipt from the buyer", "receipt", (r) => r.userId === buyerId && r.read >= reply.seq);

	step("seller corrects the reply");
	const fixed = await seller.client.call("messages.edit", { conversationId, seq: reply.seq, text: "Yes! You can see it tomorrow at 11." });
	console.log(`seller/phone   edited        #${fixed.seq} (change ${fixed.changeSeq})`);
	await phone.expect("buyer's phone shows the corrected text", "updated", (m) => m.id === reply.id && m.text === fixed.text);
	await laptop.expect("and so does the laptop", "updated", (m) => m.id === reply.id && m.text === fixed.text);

	step("search");
	const { hits } = await seller.client.call("search.messages", { q: "bike", conversationId });
	console.log(`seller/phone   search        "bike" -> ${hits.map((h) => h.highlight).join(" | ")}`);
	if (hits.length === 0) missing.push("search found nothing for 'bike'");

	for (const d of [phone, laptop, seller]) d.client.close();
	if (missing.length > 0) {
		console.error(`\nDemo FAILED: ${missing.length} expected event(s) did not arrive:\n- ${missing.join("\n- ")}`);
		process.exit(1);
	}
	console.log("\nDemo finished: every expected event arrived.");
	process.exit(0);
}

main().catch((err: Error) => {
	console.error(`Demo FAILED: ${err.message}`);
	process.exit(1);
});
