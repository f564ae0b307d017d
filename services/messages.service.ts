/**
 * messages: send (idempotent, durable before ack, dense per-conversation seq),
 * history and sync. The message path: gateway -> messages.send -> store (group
 * commit) -> fan-out to the members' session actors.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import type { ConversationSummary, Message, ParamsOf, ReceiptUpdate, ResultOf } from "../contract";
import type { Config } from "../config";
import { invalid } from "../lib/errors";
import { SEARCH_INDEX_CHANNEL, chunkForChannel } from "../lib/search/index-channel";
import { SearchOutboxRelay } from "../lib/search/outbox-relay";
import { newMessageId } from "../lib/ids";
import { messagePushJob } from "../lib/push/notifications";
import { PushHandOff } from "../lib/push/push-hand-off";
import { checkedText } from "../lib/message-text";
import type { AppendResult, ChangeResult, Membership } from "../lib/store/chat-store";
import { summaryView } from "../lib/summaries";
import { buildSyncPage } from "../lib/sync-page";
import { callerOf, requireMember, type CallerMeta } from "../mixins/caller";
import { createChatStore } from "../mixins/engines";
import { Fanout, withFanout } from "../mixins/fanout.mixin";
import { opensOnStart } from "../mixins/lifecycle.mixin";
import { ID, SEQ, SHARDED_BY_CONVERSATION, optionalLimit } from "../mixins/params";

type Ctx<P> = Context<P, CallerMeta>;

/**
 * What one sync page may hold: about 2 MB of message text, 100 summaries (each with a last
 * message), watermarks of the 500 most recently active conversations. Well under NATS's payload
 * limit in a cluster, and a bounded amount of work per call.
 */
const SYNC_PAGE_BUDGET = { textChars: 500_000, summaries: 100, receiptConversations: 500 };

/** Sends one node works on at once (each waits for its group commit); as many more may wait. */
const SEND_CONCURRENCY = 2000;

/** {conversationId: seq}, as messages.sync takes its cursors. */
const CURSORS = { type: "record", key: { type: "string", max: 128 }, value: SEQ } as const;

const CLIENT_MSG_ID = { type: "string", min: 1, max: 128, pattern: /^[A-Za-z0-9_.:-]+$/ } as const;

/**
 * In a cluster the messages node with the lowest node id relays the search outbox; when it
 * leaves, the registry drops it and the next one takes over.
 */
function leadsRelay(broker: Service["broker"]): boolean {
	if (!broker.transit) return true;
	const nodes = broker.registry
		.getServiceList({ onlyAvailable: true })
		.filter((s) => s.name === "messages")
		.map((s) => s.nodeID)
		.sort();
	return nodes.length === 0 || nodes[0] === broker.nodeID;
}

export default function messagesService(config: Config): ServiceSchema {
	const store = createChatStore(config, { feedsSearch: true });
	const fanout = new Fanout();
	let relay: SearchOutboxRelay | undefined;
	let pushes: PushHandOff | undefined;
	const { maxTextLength, historyMaxLimit, syncMaxLimit } = config.limits;

	/** Tells every other device of every member; each member's summary carries their own unread. */
	const announce = async (result: AppendResult, originSessionId: string | undefined) => {
		const memberIds = result.members.map((m) => m.userId);
		const sessions = await fanout.sessionsOf(memberIds);
		const others = sessions.filter((s) => s.sessionId !== originSessionId);
		fanout.toSessions(others, "message.new", result.message);
		if (result.duplicate) return;
		for (const member of result.members) {
			const mine = others.filter((s) => s.userId === member.userId);
			if (mine.length === 0) continue;
			const summary = summaryView({ conversation: result.conversation, member, lastMessage: result.message });
			fanout.toSessions(mine, "conversation.updated", summary);
		}
	};

	/** An edit (text) or delete (null): stored, then every other device of every member is told. */
	const changeMessage = async (ctx: Ctx<{ conversationId: string; seq: number }>, text: string | null): Promise<Message> => {
		const user = callerOf(ctx);
		const { conversationId, seq } = ctx.params;
		await requireMember(ctx, conversationId);
		const result = await store.changeMessage({ conversationId, seq, editorId: user.id, text, now: Date.now() });
		if (result.changed) announceChange(result, ctx.meta.sessionId).catch((err: Error) => ctx.service?.logger.warn("fan-out failed:", err.message));
		return result.message;
	};

	const announceChange = async (result: ChangeResult, originSessionId: string | undefined) => {
		const sessions = (await fanout.sessionsOf(result.members.map((m) => m.userId))).filter((s) => s.sessionId !== originSessionId);
		fanout.toSessions(sessions, "message.updated", result.message);
		// The inbox shows the last message: its summary changes with it.
		if (result.message.seq !== result.conversation.lastSeq) return;
		for (const member of result.members) {
			const mine = sessions.filter((s) => s.userId === member.userId);
			if (mine.length > 0) fanout.toSessions(mine, "conversation.updated", summaryView({ conversation: result.conversation, member, lastMessage: result.message }));
		}
	};

	return {
		name: "messages",
		mixins: [opensOnStart(store), withFanout(fanout)],

		started(this: Service) {
			pushes = new PushHandOff((channel, batch) => this.broker.sendToChannel(channel, batch), (err) => this.logger.warn("push hand-off failed:", err.message));
			const feed = store.searchFeed;
			if (!feed) return;
			// In a cluster the outbox drains into a durable channel that any search node consumes.
			const publish =
				config.profile === "cluster"
					? async (messages: Message[]) => {
							for (const payload of chunkForChannel(messages)) await this.broker.sendToChannel(SEARCH_INDEX_CHANNEL, payload);
						}
					: (messages: Message[]) => this.broker.call<void, { messages: Message[] }>("search.index", { messages });
			relay = new SearchOutboxRelay(feed, publish, this.logger, { active: () => leadsRelay(this.broker) });
			relay.start();
		},

		async stopped() {
			await relay?.stop();
			await pushes?.drain();
		},

		actions: {
			send: {
				visibility: "published",
				...SHARDED_BY_CONVERSATION,
				// Admission control: past this many sends in flight on one node, more are refused at once
				// as UNAVAILABLE (clients retry with backoff) instead of queueing until the node stalls
				// and misses its heartbeats.
				bulkhead: { enabled: true, concurrency: SEND_CONCURRENCY, maxQueueSize: SEND_CONCURRENCY },
				params: {
					conversationId: ID,
					clientMsgId: CLIENT_MSG_ID,
					type: { type: "enum", values: ["text"] },
					text: { type: "string" },
					attachments: { type: "array", max: 0, optional: true },
				},
				async handler(ctx: Ctx<ParamsOf<"messages.send">>): Promise<Message> {
					const user = callerOf(ctx);
					const { conversationId, clientMsgId } = ctx.params;
					const text = checkedText(ctx.params.text, maxTextLength);
					await requireMember(ctx, conversationId);
					const result = await store.appendMessage({
						id: newMessageId(),
						conversationId,
						senderId: user.id,
						clientMsgId,
						type: "text",
						text,
						attachments: [],
						now: Date.now(),
					});
					// The ack is the commit; fan-out failures must not turn a stored message into an error.
					announce(result, ctx.meta.sessionId).catch((err: Error) => this.logger.warn("fan-out failed:", err.message));
					// Devices that are not connected hear of it by push (after the commit; a crash in between loses only the push).
					if (!result.duplicate) pushes?.submit(messagePushJob(result));
					return result.message;
				},
			},

			/** The sender changes a message's text. */
			edit: {
				visibility: "published",
				...SHARDED_BY_CONVERSATION,
				params: { conversationId: ID, seq: { ...SEQ, min: 1 }, text: { type: "string" } },
				async handler(ctx: Ctx<ParamsOf<"messages.edit">>): Promise<Message> {
					const text = checkedText(ctx.params.text, maxTextLength);
					return changeMessage(ctx, text);
				},
			},

			/** The sender takes a message back: it stays in its place, with no text. */
			delete: {
				visibility: "published",
				...SHARDED_BY_CONVERSATION,
				params: { conversationId: ID, seq: { ...SEQ, min: 1 } },
				handler(ctx: Ctx<ParamsOf<"messages.delete">>): Promise<Message> {
					return changeMessage(ctx, null);
				},
			},

			history: {
				visibility: "published",
				params: {
					conversationId: ID,
					beforeSeq: { ...SEQ, optional: true },
					afterSeq: { ...SEQ, optional: true },
					limit: optionalLimit(historyMaxLimit),
				},
				async handler(ctx: Ctx<ParamsOf<"messages.history">>): Promise<Message[]> {
					const { conversationId, beforeSeq, afterSeq } = ctx.params;
					await requireMember(ctx, conversationId);
					return store.history(conversationId, { beforeSeq, afterSeq, limit: ctx.params.limit ?? 50 });
				},
			},

			/** Replays every stored message to the search index (after a reset); operators reach it via search.reindex. */
			replayToSearch: {
				visibility: "public",
				timeout: 0,
				async handler(ctx: Context): Promise<{ messages: number }> {
					const feed = store.searchFeed;
					if (!feed) return { messages: 0 };
					let count = 0;
					for (let ids = await feed.conversationIds(200); ids.length > 0; ids = await feed.conversationIds(200, ids[ids.length - 1])) {
						for (const conversationId of ids) {
							for (let after = 0; ; ) {
								const page = await store.messagesAfter(conversationId, after, 500);
								if (page.length === 0) break;
								await ctx.call("search.index", { messages: page });
								count += page.length;
								after = page[page.length - 1]!.seq;
							}
						}
					}
					return { messages: count };
				},
			},

			sync: {
				visibility: "published",
				params: {
					cursors: CURSORS,
					limit: optionalLimit(syncMaxLimit),
					changeCursors: { ...CURSORS, optional: true },
				},
				async handler(ctx: Ctx<ParamsOf<"messages.sync">>): Promise<ResultOf<"messages.sync">> {
					const user = callerOf(ctx);
					if (Object.keys(ctx.params.cursors).length > 10_000) throw invalid("at most 10000 cursors", { field: "cursors" });
					if (Object.keys(ctx.params.changeCursors ?? {}).length > 10_000) throw invalid("at most 10000 change cursors", { field: "changeCursors" });
					const memberships = await ctx.call<Membership[], { userId: string }>("conversations.memberships", { userId: user.id });
					const budget = { ...SYNC_PAGE_BUDGET, messages: ctx.params.limit ?? 1000 };
					return buildSyncPage(memberships, ctx.params.cursors, budget, {
						messagesAfter: (conversationId, afterSeq, limit) => store.messagesAfter(conversationId, afterSeq, limit),
						changesAfter: (conversationId, afterChangeSeq, uptoSeq, limit) => store.changesAfter(conversationId, afterChangeSeq, uptoSeq, limit),
						receipts: (conversationIds) => ctx.call<ReceiptUpdate[], { conversationIds: string[] }>("receipts.watermarks", { conversationIds }),
						summaries: (conversationIds) =>
							ctx.call<ConversationSummary[], { userId: string; conversationIds: string[] }>("conversations.summaries", { userId: user.id, conversationIds }),
					}, ctx.params.changeCursors);
				},
			},
		},
	};
}
