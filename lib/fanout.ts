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

export interface Delivery {
	sessionIds: string[];
	event: ServerEventName;
	payload: unknown;
}

export class Fanout {
	private broker?: ServiceBroker;
	private readonly outboxes = new Map<string, Batcher<Delivery, void>>();

	/**
	 * Session look-ups of one event-loop turn go to presence as one call, and they resolve in
	 * the order they were asked (a Batcher runs one flush at a time). That order keeps live
	 * events in seq order when presence sits on other nodes: separate calls could come back
	 * in any order and overtake each other.
	 */
	private readonly lookups = new Batcher<string[], SessionInfo[]>(
		async (requests) => {
			const userIds = [...new Set(requests.flat())];
			const sessions = await this.afterDiscovery(undefined, () => this.requireBroker().call<SessionInfo[], { userIds: string[] }>("presence.sessionsOf", { userIds }));
			const byUser = groupBy(sessions, (s) => s.userId);
			return requests.map((ids) => [...new Set(ids)].flatMap((id) => byUser.get(id) ?? []));
		},
		{ delayMs: 0, maxItems: 1000 },
	);

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

	sessionsOf(userIds: string[]): Promise<SessionInfo[]> {
		return this.lookups.submit(userIds);
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
