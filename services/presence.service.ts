/**
 * presence: the session registry (user -> device sessions and the node holding
 * each) and online / last-seen state, visible only to the user's contacts: people
 * who have both sent a message in a conversation they share.
 *
 * In a cluster it runs beside each gateway and keeps that gateway's sessions
 * alive in Redis with a heartbeat; it also sweeps the sessions of gateways whose
 * heartbeat stopped (a kill -9), so their users go offline and nothing leaks.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import type { ParamsOf, PresenceState } from "../contract";
import type { Config } from "../config";
import type { SessionInfo } from "../lib/presence/presence-registry";
import { callerOf, type CallerMeta } from "../mixins/caller";
import { runsEvery } from "../mixins/interval.mixin";
import { createPresenceRegistry } from "../mixins/engines";
import { Fanout, withFanout } from "../mixins/fanout.mixin";
import { USER_ID } from "../mixins/params";

const SESSION = { sessionId: "string", userId: "string", deviceId: "string", nodeID: "string" } as const;

export default function presenceService(config: Config): ServiceSchema {
	const registry = createPresenceRegistry(config);
	const fanout = new Fanout();
	let service: Service;

	const contactsOf = (userId: string) =>
		service.broker.call<string[], { userId: string }>("conversations.contactsOf", { userId });

	const announce = async (state: PresenceState) => {
		await fanout.toUsers(await contactsOf(state.userId), "presence", state);
	};

	const announceQuietly = (state: PresenceState) =>
		announce(state).catch((e: Error) => service.logger.warn("presence fan-out failed:", e.message));

	const localSessions = (): SessionInfo[] => {
		const gateway = service.broker.getLocalService("gateway") as unknown as { localSessions?: () => SessionInfo[] } | undefined;
		return gateway?.localSessions?.() ?? [];
	};

	/**
	 * Keeps this node's sessions alive; re-registers them if the registry forgot the node
	 * (Redis restarted empty). Nobody is announced online by that: to their contacts they
	 * never went offline. Runs on its own timer, so a slow sweep cannot starve it.
	 */
	const beat = async () => {
		if (!registry.heartbeat || !registry.restore) return;
		const nodeID = service.broker.nodeID;
		const { known } = await registry.heartbeat(nodeID);
		if (known) return;
		const sessions = localSessions();
		await registry.restore(nodeID, sessions);
		if (sessions.length > 0) service.logger.info(`presence: re-registered ${sessions.length} sessions of ${nodeID}`);
	};

	/** Sessions in the registry that this node no longer holds, seen twice in a row (a socket just connecting is seen once). */
	let suspects = new Set<string>();

	/**
	 * Takes dead nodes' users offline, and removes this node's own stray entries: a disconnect
	 * whose registry call failed, or a restore that raced a disconnect. Offline announcements go
	 * one at a time, so sweeping a big node does not flood the core nodes.
	 */
	const tidy = async () => {
		if (!registry.sweep || !registry.sessionsOfNode) return;
		for (const gone of await registry.sweep()) await announceQuietly({ userId: gone.userId, online: false, lastSeenAt: gone.lastSeenAt });
		const nodeID = service.broker.nodeID;
		const inRegistry = await registry.sessionsOfNode(nodeID);
		const held = new Set(localSessions().map((s) => s.sessionId));
		const stray = inRegistry.filter((s) => !held.has(s.sessionId));
		for (const s of stray.filter((s) => suspects.has(s.sessionId))) {
			const { wentOffline, lastSeenAt } = await registry.remove(s);
			if (wentOffline) await announceQuietly({ userId: s.userId, online: false, lastSeenAt });
		}
		suspects = new Set(stray.map((s) => s.sessionId));
	};

	return {
		name: "presence",
		mixins: [
			withFanout(fanout),
			// A third of the TTL: two beats may be lost before the node is taken for dead.
			runsEvery(Math.floor(config.cluster.sessionTtlMs / 3), () => beat()),
			runsEvery(Math.floor(config.cluster.sessionTtlMs / 3), () => tidy()),
		],

		created(this: Service) {
			service = this;
		},

		async started() {
			await registry.open?.();
			// Before the gateway takes sockets: sessions left under this node id by a process that died belong to no one.
			for (const gone of (await registry.forgetNode?.(service.broker.nodeID)) ?? []) {
				void announceQuietly({ userId: gone.userId, online: false, lastSeenAt: gone.lastSeenAt });
			}
			await beat();
		},

		async stopped() {
			await registry.close?.();
		},

		actions: {
			connect: {
				visibility: "public",
				params: SESSION,
				async handler(ctx: Context<SessionInfo>) {
					const { cameOnline } = await registry.add(ctx.params);
					if (cameOnline) announceQuietly({ userId: ctx.params.userId, online: true, lastSeenAt: null });
				},
			},

			disconnect: {
				visibility: "public",
				params: SESSION,
				async handler(ctx: Context<SessionInfo>) {
					const { wentOffline, lastSeenAt } = await registry.remove(ctx.params);
					if (wentOffline) announceQuietly({ userId: ctx.params.userId, online: false, lastSeenAt });
				},
			},

			sessionsOf: {
				visibility: "public",
				params: { userIds: { type: "array", items: "string" } },
				handler(ctx: Context<{ userIds: string[] }>) {
					return registry.sessionsOf(ctx.params.userIds);
				},
			},

			get: {
				visibility: "published",
				params: { userIds: { type: "array", items: USER_ID, min: 1, max: 200 } },
				async handler(ctx: Context<ParamsOf<"presence.get">, CallerMeta>): Promise<PresenceState[]> {
					const user = callerOf(ctx);
					const visible = new Set(await contactsOf(user.id));
					visible.add(user.id);
					const asked = [...new Set(ctx.params.userIds)].filter((id) => visible.has(id));
					return registry.states(asked);
				},
			},
		},
	};
}
