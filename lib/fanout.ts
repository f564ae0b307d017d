/**
 * Delivery to users' devices. Each device session is an actor on the gateway
 * node that holds its socket; we look sessions up in presence, group them by
 * node and make one `gateway.deliver` call per node per batch, targeted with
 * `nodeID`. The same code serves one process and a cluster.
 */
import type { ServiceBroker } from "moleculer";
import type { ServerEventName } from "../contract";
import { Batcher } from "./batcher";
import type { SessionInfo } from "./presence/presence-registry";

/** How long a delivery waits for a node or service the broker has not discovered yet. */
const DISCOVERY_WAIT_MS = 3000;
const LOOKUP_TIMEOUT_MS = 1000;
const NODE_TROUBLE = new Set(["RequestTimeoutError", "RequestRejectedError"]);

export interface Delivery {
	sessionIds: string[];
	event: ServerEventName;
	payload: unknown;
}

export class Fanout {
	private broker?: ServiceBroker;
	private readonly outboxes = new Map<string, Batcher<Delivery, void>>();

	/** The newest look-up, once released: each later one resolves only after it (see sessionsOf). */
	private lastLookup: Promise<unknown> = Promise.resolve();

	attach(broker: ServiceBroker): void {
		this.broker = broker;
	}

	/** The same event to every device of these users, except the session that caused it. */
	async toUsers(userIds: string[], event: ServerEventName, payload: unknown, exceptSessionId?: string): Promise<void> {
		const sessions = await this.sessionsOf(userIds);
		this.toSessions(sessions.filter((s) => s.sessionId !== exceptSessionId), event, payload);
	}

	/** A per-user payload (e.g. each member's own unread) to every device of each user. */
	async eachUser(userIds: string[], event: ServerEventName, payloadFor: (userId: string) => unknown, exceptSessionId?: string): Promise<void> {
		const sessions = (await this.sessionsOf(userIds)).filter((s) => s.sessionId !== exceptSessionId);
		for (const [userId, list] of groupBy(sessions, (s) => s.userId)) this.toSessions(list, event, payloadFor(userId));
	}

	/**
	 * Look-ups run concurrently but resolve in the order they were asked. With presence on
	 * other nodes, two calls can come back in either order, and fan-out of message 7 would
	 * overtake message 6 on its way to a device; released in order, live events leave in seq
	 * order. A slow look-up holds the later ones back, hence the short timeout.
	 */
	sessionsOf(userIds: string[]): Promise<SessionInfo[]> {
		const lookup = () =>
			this.requireBroker().call<SessionInfo[], { userIds: string[] }>("presence.sessionsOf", { userIds }, { timeout: LOOKUP_TIMEOUT_MS });
		// A presence node that just died is still in the registry for a few seconds: one more try
		// goes to the next presence node (round robin) instead of dropping the event.
		const call = this.afterDiscovery(undefined, () => lookup().catch((err: Error) => (NODE_TROUBLE.has(err.name) ? lookup() : Promise.reject(err))));
		// Handled here so a failure before its turn is not an unhandled rejection; callers still see it.
		call.catch(() => undefined);
		const released = this.lastLookup.then(() => call);
		this.lastLookup = released.catch(() => undefined);
		return released;
	}

	toSessions(sessions: SessionInfo[], event: ServerEventName, payload: unknown): void {
		for (const [nodeID, onNode] of groupBy(sessions, (s) => s.nodeID)) {
			this.outbox(nodeID)
				.submit({ sessionIds: onNode.map((s) => s.sessionId), event, payload })
				// Live delivery is best effort: a device that misses an event catches up through messages.sync.
				.catch((err: Error) => this.broker?.logger.warn(`delivery to node ${nodeID} failed: ${err.message}`));
		}
	}

	private outbox(nodeID: string): Batcher<Delivery, void> {
		let outbox = this.outboxes.get(nodeID);
		if (!outbox) {
			outbox = new Batcher<Delivery, void>(
				async (items) => {
					await this.afterDiscovery(nodeID, () => this.requireBroker().call("gateway.deliver", { items }, { nodeID }));
					return items.map(() => undefined);
				},
				// No small cap: a capped batch per event-loop turn lets deliveries fall behind acks under load.
				{ delayMs: 0, maxItems: 100_000 },
			);
			this.outboxes.set(nodeID, outbox);
		}
		return outbox;
	}

	/**
	 * A gateway that has just started already holds sockets (and its sessions are in the
	 * registry) a moment before the other nodes have learnt of its services. A call that
	 * finds no such service yet waits for discovery and tries again, for a few seconds;
	 * a node the broker has seen leave is not waited for.
	 */
	private async afterDiscovery<T>(nodeID: string | undefined, call: () => Promise<T>): Promise<T> {
		const deadline = Date.now() + DISCOVERY_WAIT_MS;
		for (;;) {
			try {
				return await call();
			} catch (err) {
				const undiscovered = (err as Error).name === "ServiceNotFoundError" && !(nodeID && this.knownGone(nodeID));
				if (!undiscovered || Date.now() > deadline) throw err;
				await new Promise((r) => setTimeout(r, 50));
			}
		}
	}

	private knownGone(nodeID: string): boolean {
		const node = (this.requireBroker().registry as unknown as { nodes: { get(id: string): { available: boolean } | undefined } }).nodes.get(nodeID);
		return node !== undefined && !node.available;
	}

	private requireBroker(): ServiceBroker {
		if (!this.broker) throw new Error("Fanout used before its service was created");
		return this.broker;
	}
}

function groupBy<T>(items: T[], keyOf: (item: T) => string): Map<string, T[]> {
	const groups = new Map<string, T[]>();
	for (const item of items) {
		const key = keyOf(item);
		const group = groups.get(key);
		if (group) group.push(item);
		else groups.set(key, [item]);
	}
	return groups;
}
