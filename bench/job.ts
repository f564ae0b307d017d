/**
 * What crosses the process boundary between the orchestrator (bench/run.ts)
 * and the load generator (bench/loadgen.ts): the job it is told to run, the
 * phase signals it sends while running, and the result it sends back.
 */

export type LoadScenario = "throughput" | "latency";

export interface LoadJob {
	url: string;
	/** Every gateway of the server under test; sockets are spread over them in turn. */
	urls: string[];
	scenario: LoadScenario;
	users: number;
	conversations: number;
	/** Length of the measured window. */
	durationS: number;
	/** Load applied before the window opens (JIT, caches, socket buffers), not measured. */
	warmupS: number;
	/** After the load stops: how long to wait for acks and deliveries still in flight. */
	drainS: number;
	/** throughput: in-flight sends each lane keeps. */
	window: number;
	/** latency: fixed arrival rate over all lanes, messages per second. */
	rate: number;
	/** Mark "delivered" as messages arrive (one receipts.mark in flight per recipient and conversation). */
	receipts: boolean;
	/** Spread client sockets over 127.0.0.1 .. 127.0.0.<n> as source addresses. */
	sourceAddresses: number;
}

/** Milliseconds. */
export interface LatencySummary {
	count: number;
	mean: number;
	p50: number;
	p90: number;
	p99: number;
	p999: number;
	max: number;
}

export interface LoadResult {
	scenario: LoadScenario;
	setupMs: number;
	lanes: number;
	/** Actual length of the measured window. */
	measuredS: number;
	/** Counted inside the measured window (by the time each thing happened). */
	window: { sent: number; acked: number; delivered: number };
	perSecond: { sent: number; acked: number; delivered: number };
	/** Over the whole run, warm-up included. */
	totals: { sent: number; acked: number; delivered: number };
	errors: Record<string, number>;
	/** Acked, but message.new never reached the other member within the drain time. */
	missing: number;
	/** Sent, but neither acked nor refused within the drain time. */
	unacked: number;
	duplicates: number;
	/** message.new for a conversation arriving with a seq not above the last one that socket saw. */
	outOfOrder: number;
	disconnects: number;
	/** Intended send time -> message.new at the recipient, for messages intended inside the window. */
	delivery: LatencySummary;
	/** Intended send time -> ack at the sender. */
	ack: LatencySummary;
	/** latency: how far behind its schedule the generator ever sent (its own health). */
	maxSendLagMs: number;
	/** Other server events received during the run, by name (conversation.updated, receipt.updated, ...). */
	otherEvents: Record<string, number>;
	receiptsMarked: number;
	receiptsRefused: number;
	/** The generator's own CPU over the window, percent of one core. */
	loadgenCpuPct: number;
}

export type LoadgenMessage =
	| { kind: "phase"; phase: "setup-done" | "window-open" | "window-closed" }
	| { kind: "result"; result: LoadResult }
	| { kind: "error"; message: string };
