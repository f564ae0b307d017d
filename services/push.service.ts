/**
 * push: FCM notifications for devices with no live session. Devices register
 * their FCM token (push.register); messages and receipts hand work to the durable
 * push channel after their commit; this service sends to the members' registered
 * devices that are not connected right now, and forgets tokens FCM calls dead.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import type { ParamsOf, ResultOf } from "../contract";
import type { Config } from "../config";
import type { PushDevice } from "../lib/push/device-registry";
import { invalid } from "../lib/errors";
import type { PushSender } from "../lib/push/fcm-sender";
import { messageNotification, readNotification, type PushJob } from "../lib/push/notifications";
import { PUSH_CHANNEL, PUSH_DEAD_LETTER_CHANNEL, PUSH_IN_FLIGHT, PUSH_MAX_AGE_MS, PUSH_MAX_RETRIES, PUSH_PATIENCE_MS, PUSH_STREAM_LIMITS } from "../lib/push/push-channel";
import type { SessionInfo } from "../lib/presence/presence-registry";
import { callerOf, type CallerMeta } from "../mixins/caller";
import { createDeviceRegistry, createPushSender } from "../mixins/engines";
import { opensOnStart } from "../mixins/lifecycle.mixin";

type Ctx<P> = Context<P, CallerMeta>;

const FCM_TOKEN = { type: "string", min: 1, max: 4096, pattern: /^[\x21-\x7e]+$/ } as const;
const deviceKey = (userId: string, deviceId: string) => `${userId}\u0000${deviceId}`;

export default function pushService(config: Config): ServiceSchema {
	const registry = createDeviceRegistry(config);
	let sender: PushSender | null = null;

	/** Sends, retrying what FCM could not take right now; returns what is still failing after the patience. */
	const sendWithPatience = async (service: Service, devices: PushDevice[], build: (d: PushDevice) => Parameters<PushSender["send"]>[0][number]) => {
		let pending = devices;
		const deadline = Date.now() + PUSH_PATIENCE_MS;
		for (let attempt = 0; pending.length > 0; attempt++) {
			const outcomes = await sender!.send(pending.map(build));
			const gone = pending.filter((_, i) => outcomes[i] === "gone");
			if (gone.length > 0) await registry.forget(gone);
			const refused = pending.filter((_, i) => outcomes[i] === "refused");
			if (refused.length > 0) service.logger.warn(`push: FCM refused ${refused.length} message(s) for good`);
			pending = pending.filter((_, i) => outcomes[i] === "retry");
			if (pending.length === 0 || Date.now() > deadline) break;
			await new Promise((r) => setTimeout(r, Math.min(2000, 200 * 2 ** attempt)));
		}
		return pending;
	};

	/** One job: the recipients' registered devices minus those connected now (they got the live event). */
	const deliver = async (service: Service, job: PushJob) => {
		if (!sender) return;
		// A push about something long past would only confuse: drop it rather than show it late.
		if (Date.now() - job.queuedAt > PUSH_MAX_AGE_MS) return;
		const userIds = job.kind === "message" ? job.recipients.map((r) => r.userId) : [job.userId];
		const devices = await registry.devicesOf(userIds);
		if (devices.length === 0) return;
		const sessions = await service.broker.call<SessionInfo[], { userIds: string[] }>("presence.sessionsOf", { userIds });
		const live = new Set(sessions.map((s) => deviceKey(s.userId, s.deviceId)));
		const offline = devices.filter((d) => !live.has(deviceKey(d.userId, d.deviceId)));
		if (offline.length === 0) return;
		const unread = new Map(job.kind === "message" ? job.recipients.map((r) => [r.userId, r.unread]) : [[job.userId, job.unread]]);
		const failing = await sendWithPatience(service, offline, (d) =>
			job.kind === "message" ? messageNotification(d, job.message, job.listingTitle, unread.get(d.userId) ?? 0) : readNotification(d, job.conversationId, job.unread),
		);
		// The channel redelivers (and after its retries parks the job in the dead-letter stream).
		if (failing.length > 0) throw new Error(`FCM did not take ${failing.length} notification(s); will retry`);
	};

	return {
		name: "push",
		mixins: [opensOnStart(registry)],

		channels: {
			[PUSH_CHANNEL]: {
				group: "push",
				maxRetries: PUSH_MAX_RETRIES,
				maxInFlight: PUSH_IN_FLIGHT,
				deadLettering: { enabled: true, queueName: PUSH_DEAD_LETTER_CHANNEL },
				nats: { consumerOptions: { config: { deliver_policy: "all" } }, streamConfig: PUSH_STREAM_LIMITS },
				async handler(this: Service, job: PushJob) {
					await deliver(this, job);
				},
			},
		},

		started(this: Service) {
			sender = createPushSender(config);
			if (!sender) this.logger.info("Push notifications are off (set PARLEY_FCM_SERVICE_ACCOUNT to send them); devices can still register.");
		},

		async stopped() {
			await sender?.close();
		},

		actions: {
			/** This device's FCM registration token. */
			register: {
				visibility: "published",
				params: { token: FCM_TOKEN, platform: { type: "enum", values: ["android", "ios", "web"], optional: true } },
				async handler(ctx: Ctx<ParamsOf<"push.register">>): Promise<ResultOf<"push.register">> {
					const user = callerOf(ctx);
					// Without a deviceId the session id stands in, and the next connection would be another device.
					if (!ctx.meta.deviceId || ctx.meta.deviceId === ctx.meta.sessionId) throw invalid("Connect with auth.deviceId to register this device for push", { field: "deviceId" });
					await registry.register({ userId: user.id, deviceId: ctx.meta.deviceId, token: ctx.params.token, platform: ctx.params.platform ?? "android" });
					return { ok: true };
				},
			},

			/** No more pushes to this device (sign-out, notifications turned off). */
			unregister: {
				visibility: "published",
				params: {},
				async handler(ctx: Ctx<ParamsOf<"push.unregister">>): Promise<ResultOf<"push.unregister">> {
					const user = callerOf(ctx);
					await registry.unregister(user.id, ctx.meta.deviceId ?? "");
					return { ok: true };
				},
			},
		},
	};
}
