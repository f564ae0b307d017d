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
import type { Message as FcmMessage } from "firebase-admin/messaging";
import { messageNotification, readNotification } from "../lib/push/notifications";
import type { PushBatch } from "../lib/push/push-hand-off";
import { PUSH_CHANNEL, PUSH_DEAD_LETTER_CHANNEL, PUSH_IN_FLIGHT, PUSH_IN_PROCESS_IN_FLIGHT, PUSH_MAX_AGE_MS, PUSH_MAX_RETRIES, PUSH_PATIENCE_MS, PUSH_STREAM_LIMITS } from "../lib/push/push-channel";
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

	/** Sends, retrying what FCM could not take right now; returns how many still fail after the patience. */
	const sendWithPatience = async (service: Service, notifications: { device: PushDevice; message: FcmMessage }[]): Promise<number> => {
		let pending = notifications;
		const deadline = Date.now() + PUSH_PATIENCE_MS;
		for (let attempt = 0; pending.length > 0; attempt++) {
			const outcomes = await sender!.send(pending.map((n) => n.message));
			const gone = pending.filter((_, i) => outcomes[i] === "gone").map((n) => n.device);
			if (gone.length > 0) await registry.forget(gone);
			const refused = outcomes.filter((o) => o === "refused").length;
			if (refused > 0) service.logger.warn(`push: FCM refused ${refused} message(s) for good`);
			pending = pending.filter((_, i) => outcomes[i] === "retry");
			if (pending.length === 0 || Date.now() > deadline) break;
			await new Promise((r) => setTimeout(r, Math.min(2000, 200 * 2 ** attempt)));
		}
		return pending.length;
	};

	/**
	 * One batch of jobs: the recipients' registered devices minus those connected now (they got
	 * the live event). One device look-up and one session look-up per batch.
	 */
	const deliver = async (service: Service, batch: PushBatch) => {
		if (!sender) return;
		// A push about something long past would only confuse: drop it rather than show it late.
		const jobs = batch.jobs.filter((job) => Date.now() - job.queuedAt <= PUSH_MAX_AGE_MS);
		const userIds = [...new Set(jobs.flatMap((job) => (job.kind === "message" ? job.recipients.map((r) => r.userId) : [job.userId])))];
		const devices = await registry.devicesOf(userIds);
		if (devices.length === 0) return;
		const withDevices = [...new Set(devices.map((d) => d.userId))];
		const sessions = await service.broker.call<SessionInfo[], { userIds: string[] }>("presence.sessionsOf", { userIds: withDevices });
		const live = new Set(sessions.map((s) => deviceKey(s.userId, s.deviceId)));
		const offlineOf = new Map<string, PushDevice[]>();
		for (const d of devices) if (!live.has(deviceKey(d.userId, d.deviceId))) offlineOf.set(d.userId, [...(offlineOf.get(d.userId) ?? []), d]);
		const notifications: { device: PushDevice; message: FcmMessage }[] = [];
		for (const job of jobs) {
			if (job.kind === "message") {
				for (const r of job.recipients) {
					for (const device of offlineOf.get(r.userId) ?? []) notifications.push({ device, message: messageNotification(device, job.message, job.listingTitle, r.unread) });
				}
			} else {
				for (const device of offlineOf.get(job.userId) ?? []) notifications.push({ device, message: readNotification(device, job.conversationId, job.unread) });
			}
		}
		const failing = await sendWithPatience(service, notifications);
		// The channel redelivers (and after its retries parks the batch in the dead-letter stream).
		if (failing > 0) throw new Error(`FCM did not take ${failing} notification(s); will retry`);
	};

	return {
		name: "push",
		mixins: [opensOnStart(registry)],

		channels: {
			[PUSH_CHANNEL]: {
				group: "push",
				maxRetries: PUSH_MAX_RETRIES,
				// In one process the channel is local events behind a bulkhead (concurrency maxInFlight, then a
				// queue of 100): leave it wide, so bursts of batches wait for FCM instead of being dropped.
				maxInFlight: config.profile === "cluster" ? PUSH_IN_FLIGHT : PUSH_IN_PROCESS_IN_FLIGHT,
				deadLettering: { enabled: true, queueName: PUSH_DEAD_LETTER_CHANNEL },
				nats: { consumerOptions: { config: { deliver_policy: "all" } }, streamConfig: PUSH_STREAM_LIMITS },
				async handler(this: Service, batch: PushBatch) {
					await deliver(this, batch);
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
