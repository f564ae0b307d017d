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

export interface Delivery {
	sessionIds: string[];
	event: ServerEventName;
	payload: unknown;
}

export class Fanout {
	private broker?: ServiceBroker;
	private readonly outboxes = new Map<string, Batcher<Delivery, void>>();

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
		const sessions = await this.sessionsOf(userIds);
		const byUser = new Map<string, SessionInfo[]>();
		for (const s of sessions) {
			if (s.sessionId === exceptSessionId) continue;
			const list = byUser.get(s.userId);
			if (list) list.push(s);
			else byUser.set(s.userId, [s]);
		}
		for (const [userId, list] of byUser) this.toSessions(list, event, payloadFor(userId));
	}

	sessionsOf(userIds: string[]): Promise<SessionInfo[]> {
		return this.requireBroker().call<SessionInfo[], { userIds: string[] }>("presence.sessionsOf", { userIds });
	}

	toSessions(sessions: SessionInfo[], event: ServerEventName, payload: unknown): void {
		const byNode = new Map<string, string[]>();
		for (const s of sessions) {
			const ids = byNode.get(s.nodeID);
			if (ids) ids.push(s.sessionId);
			else byNode.set(s.nodeID, [s.sessionId]);
		}
		for (const [nodeID, sessionIds] of byNode) {
			this.outbox(nodeID)
				.submit({ sessionIds, event, payload })
				// Live delivery is best effort: a device that misses an event catches up through messages.sync.
				.catch((err: Error) => this.broker?.logger.warn(`delivery to node ${nodeID} failed: ${err.message}`));
		}
	}

	private outbox(nodeID: string): Batcher<Delivery, void> {
		let outbox = this.outboxes.get(nodeID);
		if (!outbox) {
			outbox = new Batcher<Delivery, void>(
				async (items) => {
					await this.requireBroker().call("gateway.deliver", { items }, { nodeID });
					return items.map(() => undefined);
				},
				// No small cap: a capped batch per event-loop turn lets deliveries fall behind acks under load.
				{ delayMs: 0, maxItems: 100_000 },
			);
			this.outboxes.set(nodeID, outbox);
		}
		return outbox;
	}

	private requireBroker(): ServiceBroker {
		if (!this.broker) throw new Error("Fanout used before its service was created");
		return this.broker;
	}
}
