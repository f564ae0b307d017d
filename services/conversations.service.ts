/**
 * conversations: one conversation per (buyer, seller, listing), its members and
 * each user's inbox with server-computed unread.
 */
import type { Context, ServiceSchema } from "moleculer";
import type { Conversation, ConversationSummary, ParamsOf, ResultOf } from "../contract";
import type { Config } from "../config";
import { invalid, notFound } from "../lib/errors";
import { conversationIdFor } from "../lib/ids";
import { inChunks } from "../lib/in-chunks";
import { conversationView, summaryView } from "../lib/summaries";
import { callerOf, requireMember, type CallerMeta, type MemberRef } from "../mixins/caller";
import { createChatStore } from "../mixins/engines";
import { Fanout, withFanout } from "../mixins/fanout.mixin";
import { opensOnStart } from "../mixins/lifecycle.mixin";
import { ID, USER_ID } from "../mixins/params";

type Ctx<P> = Context<P, CallerMeta>;

export default function conversationsService(config: Config): ServiceSchema {
	const store = createChatStore(config);
	const fanout = new Fanout();
	let deploymentSecret = "";

	const summaryFor = async (userId: string, conversationId: string): Promise<ConversationSummary | null> => {
		const entry = await store.inboxEntry(userId, conversationId);
		return entry ? summaryView(entry) : null;
	};

	return {
		name: "conversations",
		mixins: [opensOnStart(store), withFanout(fanout)],

		async started() {
			deploymentSecret = await store.deploymentSecret();
		},

		actions: {
			open: {
				visibility: "published",
				params: {
					listingId: ID,
					sellerId: USER_ID,
					listingTitle: { type: "string", max: 200, optional: true, trim: true },
				},
				async handler(ctx: Ctx<ParamsOf<"conversations.open">>): Promise<ResultOf<"conversations.open">> {
					const buyer = callerOf(ctx);
					const { listingId, sellerId } = ctx.params;
					if (sellerId === buyer.id) throw invalid("You cannot open a conversation with yourself", { field: "sellerId" });
					const id = conversationIdFor(deploymentSecret, buyer.id, sellerId, listingId);
					const { conversation, created } = await store.openConversation({
						id,
						listingId,
						listingTitle: ctx.params.listingTitle || null,
						buyerId: buyer.id,
						sellerId,
						now: Date.now(),
					});
					// The buyer's other devices learn of it now; the seller with its first message, so opening
					// conversations cannot flood anyone's devices.
					if (created) {
						const summary = await summaryFor(buyer.id, id);
						// Best effort, like every live event: a device that misses it learns of the conversation at its next sync.
						fanout.toUsers([buyer.id], "conversation.updated", summary, ctx.meta.sessionId).catch((err: Error) => this.logger.warn("fan-out failed:", err.message));
					}
					return conversationView(conversation, await store.members(id));
				},
			},

			get: {
				visibility: "published",
				params: { conversationId: ID },
				async handler(ctx: Ctx<ParamsOf<"conversations.get">>): Promise<Conversation> {
					await requireMember(ctx, ctx.params.conversationId);
					const conversation = await store.getConversation(ctx.params.conversationId);
					if (!conversation) throw notFound("Conversation not found");
					return conversationView(conversation, await store.members(conversation.id));
				},
			},

			list: {
				visibility: "published",
				params: {
					limit: { type: "number", integer: true, min: 1, max: 100, optional: true, convert: false },
					before: { type: "string", max: 512, optional: true },
				},
				async handler(ctx: Ctx<ParamsOf<"conversations.list">>): Promise<ResultOf<"conversations.list">> {
					const user = callerOf(ctx);
					const page = await store.inbox(user.id, ctx.params.limit ?? 20, ctx.params.before);
					const items = page.entries.map(summaryView);
					return page.next ? { items, next: page.next } : { items };
				},
			},

			/** Members of a conversation (who, not their watermarks): cached, since membership rarely changes. */
			members: {
				visibility: "public",
				params: { conversationId: "string" },
				cache: { keys: ["conversationId"], ttl: 600 },
				async handler(ctx: Context<{ conversationId: string }>): Promise<MemberRef[]> {
					const members = await store.members(ctx.params.conversationId);
					if (members.length === 0) throw notFound("Conversation not found", { conversationId: ctx.params.conversationId });
					return members.map((m) => ({ userId: m.userId, role: m.role }));
				},
			},

			memberships: {
				visibility: "public",
				params: { userId: "string" },
				handler(ctx: Context<{ userId: string }>) {
					return store.memberships(ctx.params.userId);
				},
			},

			contactsOf: {
				visibility: "public",
				params: { userId: "string" },
				handler(ctx: Context<{ userId: string }>) {
					return store.contactsOf(ctx.params.userId, 5000);
				},
			},

			summaries: {
				visibility: "public",
				params: { userId: "string", conversationIds: { type: "array", items: "string" } },
				async handler(ctx: Context<{ userId: string; conversationIds: string[] }>): Promise<ConversationSummary[]> {
					const summaries = await inChunks(ctx.params.conversationIds, (id) => summaryFor(ctx.params.userId, id));
					return summaries.filter((s): s is ConversationSummary => s !== null);
				},
			},

		},
	};
}
