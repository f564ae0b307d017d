/**
 * Parley's TypeScript client over socket.io-client: typed calls and events,
 * reconnect with jittered exponential backoff, catch-up through messages.sync on
 * every (re)connect, delivery to the app in seq order exactly once, and an
 * outbox that keeps unsent messages (across restarts, given a storage path)
 * and resends them with the same clientMsgId until acked.
 */
import { EventEmitter } from "node:events";
import { randomUUID } from "node:crypto";
import { io, type Socket } from "socket.io-client";
import type {
	ActionName,
	ConversationSummary,
	Message,
	ParamsOf,
	PresenceState,
	ReceiptUpdate,
	ResultOf,
	TypingEvent,
	WireError,
} from "../contract";
import { ClientState, type FailedEntry, type OutboxEntry } from "./state";

export type { FailedEntry, OutboxEntry } from "./state";

export interface ParleyClientOptions {
	/** One server, or several gateways of a cluster: a reconnect moves on to the next one. */
	url: string | string[];
	/** A JWT, or a function returning a fresh one at every (re)connect. */
	token: string | (() => string | Promise<string>);
	deviceId: string;
	/** A JSON file for the outbox and cursors; without it they live in memory only. */
	storagePath?: string;
	/** Mark messages from others as delivered (debounced per conversation). Default true. */
	autoDelivered?: boolean;
	callTimeoutMs?: number;
	reconnectDelayMs?: number;
	reconnectDelayMaxMs?: number;
	/** Messages per sync page. */
	syncLimit?: number;
	/** "websocket" only by default: no long-polling fallback round trips. */
	transports?: ("websocket" | "polling")[];
}

export interface ClientEvents {
	/** Every message of every conversation, once, in seq order per conversation. */
	message: [Message];
	/** A message edited or deleted, as it stands now: keep the one with the highest changeSeq. */
	updated: [Message];
	receipt: [ReceiptUpdate];
	typing: [TypingEvent];
	presence: [PresenceState];
	conversation: [ConversationSummary];
	/** A (re)connect finished its catch-up. */
	synced: [{ messages: number }];
	connected: [];
	disconnected: [string];
	error: [Error];
}

/** A call failed with the server's {code, type, message}. */
export class ParleyCallError extends Error {
	constructor(readonly wire: WireError) {
		super(wire.message);
		this.name = wire.name;
	}
	get code(): number {
		return this.wire.code;
	}
	get type(): string {
		return this.wire.type;
	}
}

/** The `sub` claim of a JWT, read without verifying it (the server verifies). */
function subjectOf(token: string): string | undefined {
	try {
		return (JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as { sub?: string }).sub;
	} catch {
		return undefined;
	}
}

/** Worth sending again with the same clientMsgId; INTERNAL only a few times, in case it is not transient. */
const RETRYABLE = new Set(["RATE_LIMITED", "UNAVAILABLE", "INTERNAL", "TIMEOUT", "DISCONNECTED"]);
const MAX_INTERNAL_RETRIES = 5;
/** Outbox retries of one message back off from ~0.4 s to at most 5 s, with full jitter. */
const OUTBOX_RETRY_BASE_MS = 200;
const OUTBOX_RETRY_MAX_MS = 5000;

export class ParleyClient extends EventEmitter<ClientEvents> {
	readonly socket: Socket;
	private readonly state: ClientState;
	private readonly options: Required<Omit<ParleyClientOptions, "storagePath" | "token">> & Pick<ParleyClientOptions, "storagePath" | "token">;
	private syncing: Promise<void> | null = null;
	private syncAgain = false;
	private flushing = false;
	private readonly acks = new Map<string, { resolve: (m: Message) => void; reject: (e: Error) => void }[]>();
	private readonly deliveredTimers = new Map<string, NodeJS.Timeout>();
	private readonly typingTimers = new Map<string, NodeJS.Timeout>();
	/** The signed-in user (the token's subject), once known. */
	userId: string | undefined;

	constructor(options: ParleyClientOptions) {
		super();
		this.options = {
			autoDelivered: true,
			callTimeoutMs: 10_000,
			reconnectDelayMs: 500,
			reconnectDelayMaxMs: 10_000,
			syncLimit: 2000,
			transports: ["websocket"],
			...options,
		};
		this.state = new ClientState(options.storagePath);
		const { token, deviceId } = options;
		const urls = typeof options.url === "string" ? [options.url] : options.url;
		if (urls.length === 0) throw new Error("ParleyClient needs at least one url");
		// Devices start on a random gateway, so a cluster's load spreads.
		let current = Math.floor(Math.random() * urls.length);
		this.socket = io(urls[current]!, {
			autoConnect: false,
			transports: this.options.transports,
			reconnection: true,
			reconnectionDelay: this.options.reconnectDelayMs,
			reconnectionDelayMax: this.options.reconnectDelayMaxMs,
			randomizationFactor: 0.5,
			auth: (cb) => {
				Promise.resolve(typeof token === "function" ? token() : token).then(
					(t) => {
						this.userId = subjectOf(t);
						cb({ token: t, deviceId });
					},
					() => cb({ token: "", deviceId }),
				);
			},
		});
		if (urls.length > 1) {
			// The next attempt goes to the next gateway: the one we lost may be gone for good.
			const manager = this.socket.io as unknown as { uri: string };
			this.socket.io.on("reconnect_attempt", () => {
				current = (current + 1) % urls.length;
				manager.uri = urls[current]!;
			});
		}
		this.socket.on("connect", () => {
			this.emit("connected");
			this.catchUp();
		});
		this.socket.on("disconnect", (reason) => this.emit("disconnected", reason));
		this.socket.on("connect_error", (err) => {
			if (this.socket.active) return; // a transport error: socket.io retries with its backoff
			// A refused handshake is final for socket.io. Too many handshakes is not: come back when told.
			const refusal = (err as Error & { data?: { type?: string; data?: { retryAfterMs?: number } } }).data;
			if (refusal?.type === "RATE_LIMITED") {
				const wait = (refusal.data?.retryAfterMs ?? 1000) * (1 + Math.random() * 0.5);
				setTimeout(() => this.socket.connect(), wait).unref();
				return;
			}
			this.emit("error", err);
		});
		this.socket.on("message.new", (m: Message) => this.receive(m));
		this.socket.on("message.updated", (m: Message) => this.receiveChange(m, true));
		this.socket.on("receipt.updated", (r: ReceiptUpdate) => this.emit("receipt", r));
		this.socket.on("typing", (t: TypingEvent) => this.typing(t));
		this.socket.on("presence", (p: PresenceState) => this.emit("presence", p));
		this.socket.on("conversation.updated", (c: ConversationSummary) => this.emit("conversation", c));
	}

	/** Connects and resolves after the first catch-up (or rejects if the handshake is refused). */
	connect(): Promise<void> {
		return new Promise((resolve, reject) => {
			const onSynced = () => {
				this.off("error", onError);
				resolve();
			};
			const onError = (err: Error) => {
				this.off("synced", onSynced);
				reject(err);
			};
			this.once("synced", onSynced);
			this.once("error", onError);
			this.socket.connect();
		});
	}

	close(): void {
		for (const t of [...this.deliveredTimers.values(), ...this.typingTimers.values()]) clearTimeout(t);
		this.state.save();
		this.socket.disconnect();
	}

	/** The gateway this client is connected to, or trying to reach. */
	get currentUrl(): string {
		return (this.socket.io as unknown as { uri: string }).uri;
	}

	get connected(): boolean {
		return this.socket.connected;
	}

	/** Highest seq delivered to the app, per conversation. */
	cursors(): Record<string, number> {
		return this.state.cursors();
	}

	pending(): OutboxEntry[] {
		return this.state.outbox();
	}

	/** Messages the server refused for good (not a member, invalid...), kept until retried or discarded. */
	failed(): FailedEntry[] {
		return this.state.failed();
	}

	/** Puts a failed message back in the outbox, with its clientMsgId, so it cannot be stored twice. */
	retryFailed(clientMsgId: string): Promise<Message> {
		const entry = this.state.unfail(clientMsgId);
		if (!entry) return Promise.reject(new Error(`no failed message ${clientMsgId}`));
		return this.send(entry.conversationId, entry.text, entry.clientMsgId);
	}

	discardFailed(clientMsgId: string): void {
		this.state.unfail(clientMsgId);
	}

	/** A typed call of a socket action. */
	call<A extends ActionName>(action: A, params: ParamsOf<A>): Promise<ResultOf<A>> {
		return new Promise((resolve, reject) => {
			if (!this.socket.connected) return reject(new ParleyCallError({ name: "Disconnected", message: "not connected", code: 503, type: "DISCONNECTED" }));
			this.socket
				.timeout(this.options.callTimeoutMs)
				.emit("call", action, params, (timeoutErr: Error | null, err: WireError | null, res: ResultOf<A>) => {
					if (timeoutErr) reject(new ParleyCallError({ name: "Timeout", message: `${action} timed out`, code: 504, type: "TIMEOUT" }));
					else if (err) reject(new ParleyCallError(err));
					else resolve(res);
				});
		});
	}

	/**
	 * Sends a text message through the outbox: stored locally first, sent now
	 * if connected, resent with the same clientMsgId after any failure until the
	 * server acks it. Resolves with the stored message.
	 */
	send(conversationId: string, text: string, clientMsgId: string = randomUUID()): Promise<Message> {
		const entry: OutboxEntry = { conversationId, clientMsgId, text, queuedAt: new Date().toISOString() };
		this.state.enqueue(entry);
		const acked = new Promise<Message>((resolve, reject) => {
			const waiters = this.acks.get(clientMsgId) ?? [];
			waiters.push({ resolve, reject });
			this.acks.set(clientMsgId, waiters);
		});
		if (!this.syncing) void this.flushOutbox();
		return acked;
	}

	markRead(conversationId: string, seq: number) {
		return this.call("receipts.mark", { conversationId, seq, state: "read" });
	}

	/** Sync, then resend the outbox; runs again if asked while running. */
	private catchUp(): void {
		if (this.syncing) {
			this.syncAgain = true;
			return;
		}
		this.syncing = (async () => {
			do {
				this.syncAgain = false;
				try {
					const count = await this.syncAll();
					this.emit("synced", { messages: count });
				} catch (err) {
					if (this.socket.connected) this.syncAgain = true;
					else this.emit("error", err as Error);
				}
			} while (this.syncAgain && this.socket.connected);
		})().finally(() => {
			this.syncing = null;
			void this.flushOutbox();
		});
	}

	private async syncAll(): Promise<number> {
		let count = 0;
		for (;;) {
			const res = await this.call("messages.sync", { cursors: this.state.cursors(), changeCursors: this.state.changeCursors(), limit: this.options.syncLimit });
			for (const c of res.conversations) {
				this.state.know(c.id);
				this.emit("conversation", c);
			}
			for (const m of res.changes ?? []) this.receiveChange(m, false);
			// The server says how far its answer covers: a message's own changeSeq may be past a change not yet given.
			for (const [conversationId, upTo] of Object.entries(res.changesUpTo ?? {})) {
				if (upTo > this.state.changeCursor(conversationId)) this.state.advanceChange(conversationId, upTo);
			}
			for (const m of res.messages) if (this.receive(m)) count++;
			for (const r of res.receipts) this.emit("receipt", r);
			if (!res.more) return count;
		}
	}

	/** Applies a message in seq order; a gap starts a catch-up. Returns whether it was new. */
	private receive(m: Message): boolean {
		const cursor = this.state.cursor(m.conversationId);
		if (m.seq <= cursor) return false;
		if (m.seq > cursor + 1) {
			this.catchUp();
			return false;
		}
		this.state.advance(m.conversationId, m.seq);
		this.emit("message", m);
		if (this.options.autoDelivered && m.senderId !== this.userId) this.scheduleDelivered(m);
		return true;
	}

	/**
	 * Applies an edit or delete. Change numbers are dense per conversation, so a live one that
	 * skips a number means one was missed: catch up (sync sends each changed message once, as it
	 * stands, so its cursor may jump).
	 */
	private receiveChange(m: Message, live: boolean): void {
		const changeSeq = m.changeSeq ?? 0;
		const cursor = this.state.changeCursor(m.conversationId);
		if (live && changeSeq <= cursor) return;
		// From sync the cursor moves with changesUpTo; live, only without a gap.
		if (live && changeSeq === cursor + 1) this.state.advanceChange(m.conversationId, changeSeq);
		else if (live) this.catchUp();
		this.emit("updated", m);
	}

	/** Passes typing on, and ends an indicator itself when the server's expiry passes with no news. */
	private typing(t: TypingEvent): void {
		const key = `${t.conversationId}\u0000${t.userId}`;
		clearTimeout(this.typingTimers.get(key));
		this.typingTimers.delete(key);
		if (t.typing && t.expiresInMs) {
			const expire = () => {
				this.typingTimers.delete(key);
				this.emit("typing", { conversationId: t.conversationId, userId: t.userId, typing: false });
			};
			this.typingTimers.set(key, setTimeout(expire, t.expiresInMs));
		}
		this.emit("typing", t);
	}

	private scheduleDelivered(m: Message): void {
		if (this.deliveredTimers.has(m.conversationId)) return;
		this.deliveredTimers.set(
			m.conversationId,
			setTimeout(() => {
				this.deliveredTimers.delete(m.conversationId);
				const seq = this.state.cursor(m.conversationId);
				this.call("receipts.mark", { conversationId: m.conversationId, seq, state: "delivered" }).catch(() => undefined);
			}, 50),
		);
	}

	/** Sends queued messages one at a time, oldest first, so a user's own messages keep their order. */
	private async flushOutbox(): Promise<void> {
		if (this.flushing) return;
		this.flushing = true;
		try {
			// Per entry: failures of the head of the queue so far. Reset when it leaves the queue.
			let failures = 0;
			let internalErrors = 0;
			for (let entry = this.state.outbox()[0]; entry && this.socket.connected; entry = this.state.outbox()[0]) {
				try {
					const message = await this.call("messages.send", {
						conversationId: entry.conversationId,
						clientMsgId: entry.clientMsgId,
						type: "text",
						text: entry.text,
					});
					this.state.dequeue(entry.clientMsgId);
					failures = internalErrors = 0;
					// Our own message is part of the conversation too: it moves the cursor like any other.
					this.receive(message);
					this.settle(entry.clientMsgId, (w) => w.resolve(message));
				} catch (err) {
					const type = err instanceof ParleyCallError ? err.type : "INTERNAL";
					if (type === "INTERNAL") internalErrors++;
					if (RETRYABLE.has(type) && internalErrors <= MAX_INTERNAL_RETRIES) {
						failures++;
						const retryAfterMs = (err as ParleyCallError).wire?.data as { retryAfterMs?: number } | undefined;
						// Full jitter: clients refused together by an overloaded server must not come back together.
						const backoff = Math.random() * Math.min(OUTBOX_RETRY_MAX_MS, OUTBOX_RETRY_BASE_MS * 2 ** failures);
						const wait = type === "RATE_LIMITED" ? (retryAfterMs?.retryAfterMs ?? 1000) : backoff;
						await new Promise((r) => setTimeout(r, wait));
						continue;
					}
					failures = internalErrors = 0;
					// The server refused it for good (forbidden, invalid...): retrying cannot help.
					// Kept with the reason, not dropped: the app can show it and offer a retry or discard.
					this.state.fail(entry, err instanceof ParleyCallError ? err.wire : { name: "Error", message: String(err), code: 500, type: "INTERNAL" });
					this.settle(entry.clientMsgId, (w) => w.reject(err as Error));
				}
			}
		} finally {
			this.flushing = false;
		}
	}

	private settle(clientMsgId: string, fn: (w: { resolve: (m: Message) => void; reject: (e: Error) => void }) => void): void {
		for (const w of this.acks.get(clientMsgId) ?? []) fn(w);
		this.acks.delete(clientMsgId);
	}
}
