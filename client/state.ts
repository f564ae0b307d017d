/**
 * What a client must not forget: its outbox (messages not yet acked) and its
 * cursor per conversation. Written to a JSON file on every change when a path
 * is given (write to a temp file, then rename, so a crash never leaves half a file).
 */
import fs from "node:fs";
import path from "node:path";

export interface OutboxEntry {
	conversationId: string;
	clientMsgId: string;
	text: string;
	queuedAt: string;
}

/** A message the server refused for good, with its answer. */
export interface FailedEntry extends OutboxEntry {
	error: { type: string; code: number; message: string };
}

interface Saved {
	outbox: OutboxEntry[];
	failed: FailedEntry[];
	cursors: Record<string, number>;
	/** Last edit/delete applied, per conversation. */
	changeCursors: Record<string, number>;
}

export class ClientState {
	private readonly data: Saved = { outbox: [], failed: [], cursors: {}, changeCursors: {} };
	private saveTimer: NodeJS.Timeout | undefined;

	constructor(private readonly file?: string) {
		if (file && fs.existsSync(file)) {
			const saved = JSON.parse(fs.readFileSync(file, "utf8")) as Partial<Saved>;
			this.data.outbox = saved.outbox ?? [];
			this.data.failed = saved.failed ?? [];
			this.data.cursors = saved.cursors ?? {};
			this.data.changeCursors = saved.changeCursors ?? {};
		}
	}

	cursor(conversationId: string): number {
		return this.data.cursors[conversationId] ?? 0;
	}

	/** Remembers a conversation (cursor 0) so the server stops offering it as unseen. */
	know(conversationId: string): void {
		if (!(conversationId in this.data.cursors)) this.advance(conversationId, 0);
	}

	cursors(): Record<string, number> {
		return { ...this.data.cursors };
	}

	/** Cursors are saved within 100 ms (the outbox at once): a crash can only re-deliver, never lose. */
	advance(conversationId: string, seq: number): void {
		this.data.cursors[conversationId] = seq;
		this.saveSoon();
	}

	changeCursor(conversationId: string): number {
		return this.data.changeCursors[conversationId] ?? 0;
	}

	changeCursors(): Record<string, number> {
		return { ...this.data.changeCursors };
	}

	advanceChange(conversationId: string, changeSeq: number): void {
		this.data.changeCursors[conversationId] = changeSeq;
		this.saveSoon();
	}

	private saveSoon(): void {
		if (this.file && !this.saveTimer) {
			this.saveTimer = setTimeout(() => this.save(), 100);
			this.saveTimer.unref();
		}
	}

	outbox(): OutboxEntry[] {
		return [...this.data.outbox];
	}

	enqueue(entry: OutboxEntry): void {
		this.data.outbox.push(entry);
		this.save();
	}

	/** Moves an entry from the outbox to the failed list, at once on disk. */
	fail(entry: OutboxEntry, error: { type: string; code: number; message: string }): void {
		this.data.outbox = this.data.outbox.filter((e) => e.clientMsgId !== entry.clientMsgId);
		this.data.failed.push({ ...entry, error: { type: error.type, code: error.code, message: error.message } });
		this.save();
	}

	failed(): FailedEntry[] {
		return [...this.data.failed];
	}

	unfail(clientMsgId: string): FailedEntry | undefined {
		const entry = this.data.failed.find((e) => e.clientMsgId === clientMsgId);
		this.data.failed = this.data.failed.filter((e) => e.clientMsgId !== clientMsgId);
		this.save();
		return entry;
	}

	dequeue(clientMsgId: string): void {
		this.data.outbox = this.data.outbox.filter((e) => e.clientMsgId !== clientMsgId);
		this.save();
	}

	save(): void {
		if (this.saveTimer) clearTimeout(this.saveTimer);
		this.saveTimer = undefined;
		if (!this.file) return;
		fs.mkdirSync(path.dirname(this.file), { recursive: true });
		const tmp = `${this.file}.${process.pid}.tmp`;
		fs.writeFileSync(tmp, JSON.stringify(this.data));
		fs.renameSync(tmp, this.file);
	}
}
