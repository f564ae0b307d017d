/**
 * receipts: delivered/read watermarks per member, forward-only. Marks arriving
 * within one flush window are coalesced to one store write per (member,
 * conversation); the caller's ack waits for that write, so what it is told is
 * what every device reads afterwards.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import type { ParamsOf, ReceiptUpdate, Watermarks } from "../contract";
import type { Config } from "../config";
import { Batcher } from "../lib/batcher";
import { forbidden } from "../lib/errors";
import { inChunks } from "../lib/in-chunks";
import type { PushJob } from "../lib/push/notifications";
import { PushHandOff } from "../lib/push/push-hand-off";
import { coalesceMarks } from "../lib/receipt-batch";
import type { WatermarkResult, WatermarkUpdate } from "../lib/store/chat-store";
import { summaryView } from "../lib/summaries";
import { callerOf, requireMember, type CallerMeta, type MemberRef } from "../mixins/caller";
import { createChatStore } from "../mixins/engines";
import { Fanout, withFanout } from "../mixins/fanout.mixin";
import { opensOnStart } from "../mixins/lifecycle.mixin";
import { ID, SEQ, SHARDED_BY_CONVERSATION } from "../mixins/params";

type Ctx<P> = Context<P, CallerMeta>;
type Mark = WatermarkUpdate;

export default function receiptsService(config: Config): ServiceSchema {
	const store = createChatStore(config);
	const fanout = new Fanout();
	let service: Service;
	let pushes: PushHandOff;

	const announce = async (result: WatermarkResult) => {
		const { member } = result;
		const members = await service.broker.call<MemberRef[], { conversationId: string }>("conversations.members", {
			conversationId: member.conversationId,
		});
		const update: ReceiptUpdate = { conversationId: member.conversationId, userId: member.userId, delivered: member.delivered, read: member.read };
		await fanout.toUsers(members.map((m) => m.userId), "receipt.updated", update);
		if (!result.readChanged) return;
		// Reading on one device clears the unread count on all of them.
		const entry = await store.inboxEntry(member.userId, member.conversationId);
		if (!entry) return;
		const summary = summaryView(entry);
		await fanout.toUsers([member.userId], "conversation.updated", summary);
		// The user's devices that are not connected clear the notification too (a silent push).
		const job: PushJob = { kind: "read", conversationId: member.conversationId, userId: member.userId, unread: summary.unread, queuedAt: Date.now() };
		pushes.submit(job);
	};

	/** One flush: coalesce, write once per key, answer every caller with its key's result, then fan out. */
	const flush = async (marks: Mark[]): Promise<(WatermarkResult | Error)[]> => {
		const { writes, answeredBy } = coalesceMarks(marks);
		const results = await store.saveWatermarks(writes);
		for (const r of results) {
			if (r?.changed) announce(r).catch((err: Error) => service.logger.warn("receipt fan-out failed:", err.message));
		}
		return answeredBy.map((i) => results[i] ?? forbidden("You are not a member of this conversation"));
	};

	const batcher = new Batcher<Mark, WatermarkResult>(flush, { delayMs: config.receiptFlushMs, maxItems: 2000 });

	return {
		name: "receipts",
		mixins: [opensOnStart(store), withFanout(fanout)],

		created(this: Service) {
			service = this;
			pushes = new PushHandOff((channel, batch) => this.broker.sendToChannel(channel, batch), (err) => this.logger.warn("push hand-off failed:", err.message));
		},

		async stopped() {
			await batcher.drain();
			await pushes.drain();
		},

		actions: {
			mark: {
				visibility: "published",
				// One node writes a conversation's watermarks: the store's read-modify-write needs a single writer.
				...SHARDED_BY_CONVERSATION,
				params: {
					conversationId: ID,
					seq: SEQ,
					state: { type: "enum", values: ["delivered", "read"] },
				},
				async handler(ctx: Ctx<ParamsOf<"receipts.mark">>): Promise<Watermarks> {
					const user = callerOf(ctx);
					const { conversationId, seq, state } = ctx.params;
					await requireMember(ctx, conversationId);
					const result = await batcher.submit({
						conversationId,
						userId: user.id,
						delivered: seq,
						read: state === "read" ? seq : 0,
					});
					return { delivered: result.member.delivered, read: result.member.read };
				},
			},

			/** Every member's watermarks for these conversations (used by sync). */
			watermarks: {
				visibility: "public",
				params: { conversationIds: { type: "array", items: "string" } },
				async handler(ctx: Context<{ conversationIds: string[] }>): Promise<ReceiptUpdate[]> {
					const perConversation = await inChunks(ctx.params.conversationIds, async (conversationId) =>
						(await store.members(conversationId)).map((m) => ({ conversationId, userId: m.userId, delivered: m.delivered, read: m.read })),
					);
					return perConversation.flat();
				},
			},
		},
	};
}
