/**
 * presence: the session registry (user -> device sessions and the node holding
 * each) and online / last-seen state, visible only to people who share a
 * conversation with the user.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import type { ParamsOf, PresenceState } from "../contract";
import type { Config } from "../config";
import type { SessionInfo } from "../lib/presence/presence-registry";
import { callerOf, type CallerMeta } from "../mixins/caller";
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

	return {
		name: "presence",
		mixins: [withFanout(fanout)],

		created(this: Service) {
			service = this;
		},

		actions: {
			connect: {
				visibility: "public",
				params: SESSION,
				async handler(ctx: Context<SessionInfo>) {
					const { cameOnline } = await registry.add(ctx.params);
					if (cameOnline) {
						announce({ userId: ctx.params.userId, online: true, lastSeenAt: null }).catch((e: Error) =>
							service.logger.warn("presence fan-out failed:", e.message),
						);
					}
				},
			},

			disconnect: {
				visibility: "public",
				params: SESSION,
				async handler(ctx: Context<SessionInfo>) {
					const { wentOffline, lastSeenAt } = await registry.remove(ctx.params);
					if (wentOffline) {
						announce({ userId: ctx.params.userId, online: false, lastSeenAt }).catch((e: Error) =>
							service.logger.warn("presence fan-out failed:", e.message),
						);
					}
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
