/**
 * The T1/T2 yardstick: a bare socket.io 4.8 relay with no framework and no
 * store, speaking just enough of Parley's contract that the same load
 * generator drives it unchanged: POST /api/dev/token, GET /api/health, and
 * the `call` event for conversations.open, messages.send and receipts.mark
 * (for --receipts). Tokens are
 * decoded, not verified (the relay stands for the cost of moving bytes).
 *
 *   PORT=4000 PARLEY_HOST=127.0.0.1 node --import tsx bench/baseline-relay.ts
 *   RELAY_SUMMARIES=1 also emits conversation.updated to the recipient per message, as Parley does.
 */
import http from "node:http";
import { Server, type Socket } from "socket.io";
import type { Conversation, ConversationSummary, Message } from "../contract";

interface RelayConversation extends Conversation {
	lastMessage: Message | null;
}

type Ack = (err: { name: string; message: string; code: number; type: string } | null, res?: unknown) => void;

const port = Number(process.env.PORT ?? 4000);
const host = process.env.PARLEY_HOST ?? "127.0.0.1";
const emitSummaries = process.env.RELAY_SUMMARIES === "1";

const conversations = new Map<string, RelayConversation>();
let messageCounter = 0;

const userRoom = (userId: string) => `u:${userId}`;
const fail = (ack: Ack, code: number, type: string, message: string) => ack({ name: "RelayError", message, code, type });

/** An unsigned JWT-shaped token: header.payload. (the relay never checks a signature). */
function issueToken(userId: string, name: string, role: string): string {
	const part = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
	return `${part({ alg: "none", typ: "JWT" })}.${part({ sub: userId, name, role })}.`;
}

function userIdFromToken(token: unknown): string | undefined {
	if (typeof token !== "string") return undefined;
	try {
		const payload = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as { sub?: unknown };
		return typeof payload.sub === "string" && payload.sub ? payload.sub : undefined;
	} catch {
		return undefined;
	}
}

function openConversation(buyerId: string, params: { listingId?: unknown; sellerId?: unknown; listingTitle?: unknown }): RelayConversation {
	const listingId = String(params.listingId);
	const sellerId = String(params.sellerId);
	const id = `c:${buyerId}:${sellerId}:${listingId}`;
	let conversation = conversations.get(id);
	if (!conversation) {
		const now = new Date().toISOString();
		conversation = {
			id,
			listingId,
			listingTitle: typeof params.listingTitle === "string" ? params.listingTitle : null,
			buyerId,
			sellerId,
			createdAt: now,
			lastSeq: 0,
			lastActivityAt: now,
			members: [
				{ userId: buyerId, role: "buyer", delivered: 0, read: 0 },
				{ userId: sellerId, role: "seller", delivered: 0, read: 0 },
			],
			lastMessage: null,
		};
		conversations.set(id, conversation);
	}
	return conversation;
}

function sendMessage(socket: Socket, senderId: string, params: { conversationId?: unknown; clientMsgId?: unknown; text?: unknown }, ack: Ack): void {
	const conversation = conversations.get(String(params.conversationId));
	if (!conversation || (conversation.buyerId !== senderId && conversation.sellerId !== senderId)) {
		return fail(ack, 404, "NOT_FOUND", "Conversation not found");
	}
	const now = new Date();
	const message: Message = {
		id: `m${now.getTime().toString(36)}${(++messageCounter).toString(36)}`,
		conversationId: conversation.id,
		seq: ++conversation.lastSeq,
		senderId,
		clientMsgId: String(params.clientMsgId),
		type: "text",
		text: String(params.text ?? ""),
		attachments: [],
		createdAt: now.toISOString(),
	};
	conversation.lastActivityAt = message.createdAt;
	conversation.lastMessage = message;
	const recipientId = conversation.buyerId === senderId ? conversation.sellerId : conversation.buyerId;
	// Every device of both members except the sending socket, as Parley does.
	socket.to([userRoom(conversation.buyerId), userRoom(conversation.sellerId)]).emit("message.new", message);
	if (emitSummaries) socket.to(userRoom(recipientId)).emit("conversation.updated", summaryOf(conversation));
	ack(null, message);
}

/** Forward-only delivered/read watermarks, told to every device of both members but the caller's. */
function markReceipt(socket: Socket, userId: string, params: { conversationId?: unknown; seq?: unknown; state?: unknown }, ack: Ack): void {
	const conversation = conversations.get(String(params.conversationId));
	const member = conversation?.members.find((m) => m.userId === userId);
	if (!conversation || !member) return fail(ack, 404, "NOT_FOUND", "Conversation not found");
	const seq = Math.min(Number(params.seq) || 0, conversation.lastSeq);
	if (params.state === "read") member.read = Math.max(member.read, seq);
	member.delivered = Math.max(member.delivered, member.read, seq);
	const watermarks = { delivered: member.delivered, read: member.read };
	socket.to([userRoom(conversation.buyerId), userRoom(conversation.sellerId)]).emit("receipt.updated", { conversationId: conversation.id, userId, ...watermarks });
	ack(null, watermarks);
}

function summaryOf(c: RelayConversation): ConversationSummary {
	const { id, listingId, listingTitle, buyerId, sellerId, lastSeq, lastActivityAt, lastMessage } = c;
	// The relay keeps no read watermarks; a recipient's unread is everything.
	return { id, listingId, listingTitle, buyerId, sellerId, lastSeq, lastActivityAt, lastMessage, unread: lastSeq };
}

function handleHttp(req: http.IncomingMessage, res: http.ServerResponse): void {
	const json = (status: number, body: unknown) => {
		res.writeHead(status, { "content-type": "application/json" });
		res.end(JSON.stringify(body));
	};
	if (req.method === "GET" && req.url === "/api/health") return json(200, { status: "ok" });
	if (req.method === "POST" && req.url === "/api/dev/token") {
		let body = "";
		req.on("data", (chunk: Buffer) => (body += chunk));
		req.on("end", () => {
			try {
				const { userId, name, role } = JSON.parse(body) as { userId?: string; name?: string; role?: string };
				if (!userId) return json(422, { type: "VALIDATION_ERROR", message: "userId is required" });
				json(200, { token: issueToken(userId, name ?? userId, role ?? "user"), userId });
			} catch {
				json(400, { type: "VALIDATION_ERROR", message: "bad JSON" });
			}
		});
		return;
	}
	// socket.io answers its own path; anything else is not ours.
	if (!req.url?.startsWith("/socket.io/")) json(404, { type: "NOT_FOUND", message: "Not found" });
}

const httpServer = http.createServer(handleHttp);
const io = new Server(httpServer, { perMessageDeflate: false, cors: { origin: "*" } });

io.use((socket, next) => {
	const userId = userIdFromToken((socket.handshake.auth as { token?: unknown }).token);
	if (!userId) return next(Object.assign(new Error("UNAUTHORIZED"), { data: { code: 401, type: "UNAUTHORIZED" } }));
	socket.data.userId = userId;
	next();
});

io.on("connection", (socket) => {
	const userId = socket.data.userId as string;
	void socket.join(userRoom(userId));
	socket.on("call", (action: unknown, params: unknown, ack: unknown) => {
		if (typeof ack !== "function") return;
		const p = (params ?? {}) as Record<string, unknown>;
		if (action === "conversations.open") return (ack as Ack)(null, openConversation(userId, p));
		if (action === "messages.send") return sendMessage(socket, userId, p, ack as Ack);
		if (action === "receipts.mark") return markReceipt(socket, userId, p, ack as Ack);
		fail(ack as Ack, 404, "NOT_FOUND", `the relay does not implement ${String(action)}`);
	});
});

httpServer.listen(port, host, () => console.log(`relay ready on http://${host}:${port}`));

for (const signal of ["SIGTERM", "SIGINT"] as const) {
	process.on(signal, () => {
		void io.close();
		process.exit(0);
	});
}
