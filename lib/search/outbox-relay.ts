/**
 * Moves messages from the store's search outbox to the search index: at least
 * once (an entry leaves the outbox only after the index took it), idempotent
 * (the index keys documents by message id), and patient (an index outage only
 * delays search results; the relay retries with backoff until it is back).
 */
import type { Message } from "../../contract";
import type { SearchFeed } from "../store/chat-store";

export interface RelayLogger {
	warn(...args: unknown[]): void;
	info(...args: unknown[]): void;
}

export interface RelayOptions {
	batch: number;
	idleMs: number;
	maxBackoffMs: number;
	/**
	 * Whether this relay should move entries now. Every messages node of a cluster has a
	 * relay over the same shared outbox; one at a time keeps them from publishing
	 * everything twice (a brief overlap at a hand-over is harmless: the index is idempotent).
	 */
	active: () => boolean;
}

export class SearchOutboxRelay {
	private running = false;
	private loop: Promise<void> | undefined;
	private wake: (() => void) | undefined;

	constructor(
		private readonly feed: SearchFeed,
		private readonly publish: (messages: Message[]) => Promise<void>,
		private readonly logger: RelayLogger,
		options: Partial<RelayOptions> = {},
	) {
		this.options = { batch: 500, idleMs: 100, maxBackoffMs: 10_000, active: () => true, ...options };
	}

	private readonly options: RelayOptions;

	start(): void {
		if (this.running) return;
		this.running = true;
		this.loop = this.run();
	}

	async stop(): Promise<void> {
		this.running = false;
		this.wake?.();
		await this.loop;
	}

	private async run(): Promise<void> {
		let failures = 0;
		while (this.running) {
			let moved = 0;
			if (!this.options.active()) {
				await this.sleep(this.options.idleMs);
				continue;
			}
			try {
				const entries = await this.feed.backlog(this.options.batch);
				if (entries.length > 0) {
					await this.publish(entries.map((e) => e.message));
					await this.feed.confirm(entries.map((e) => e.key));
					moved = entries.length;
				}
				if (failures > 0) this.logger.info(`search index reachable again after ${failures} failed attempt(s)`);
				failures = 0;
			} catch (err) {
				if (failures++ === 0) this.logger.warn(`search indexing is failing, will retry: ${(err as Error).message}`);
			}
			if (moved < this.options.batch) await this.sleep(failures > 0 ? Math.min(this.options.maxBackoffMs, 200 * 2 ** failures) : this.options.idleMs);
		}
	}

	private sleep(ms: number): Promise<void> {
		return new Promise((resolve) => {
			const timer = setTimeout(resolve, ms);
			this.wake = () => {
				clearTimeout(timer);
				resolve();
			};
		});
	}
}
