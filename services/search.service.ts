/** search: full-text search over the caller's own conversations only. */
import type { Context, Service, ServiceSchema } from "moleculer";
import type { Message, ParamsOf, ResultOf } from "../contract";
import { unavailable } from "../lib/errors";
import { SEARCH_DEAD_LETTER_CHANNEL, SEARCH_INDEX_CHANNEL, SEARCH_INDEX_IN_FLIGHT, SEARCH_INDEX_MAX_RETRIES, SEARCH_INDEX_PATIENCE_MS, SEARCH_STREAM_LIMITS, withRetries, type SearchIndexPayload } from "../lib/search/index-channel";
import { isFed, type SelfMaintainedSearchIndex } from "../lib/search/search-index";
import type { Config } from "../config";
import { callerOf, requireMember, type CallerMeta, type MemberRef } from "../mixins/caller";
import { createSearchIndex } from "../mixins/engines";
import { opensOnStart } from "../mixins/lifecycle.mixin";
import { ID, optionalLimit } from "../mixins/params";

export default function searchService(config: Config): ServiceSchema {
	const index = createSearchIndex(config);

	return {
		name: "search",
		mixins: [opensOnStart(index)],

		started(this: Service) {
			if (!isFed(index) || !index.rebuilt) return;
			// The index was made anew for this build's schema: fill it from the store, without holding up the start.
			this.logger.warn("The search index had an older schema and was recreated: replaying every stored message into it");
			this.broker
				.waitForServices(["messages"])
				.then(() => this.broker.call<{ messages: number }, Record<string, never>>("messages.replayToSearch", {}, { timeout: 0 }))
				.then(({ messages }) => this.logger.info(`Search index rebuilt from the store: ${messages} messages`))
				.catch((err: Error) => this.logger.error(`Rebuilding the search index failed (run search.reindex): ${err.message}`));
		},

		// Cluster: the messages' search outbox arrives through a durable channel (see index-channel.ts).
		...(config.profile === "cluster"
			? {
					channels: {
						[SEARCH_INDEX_CHANNEL]: {
							group: "search",
							maxRetries: SEARCH_INDEX_MAX_RETRIES,
							// Shared by every search node (one durable consumer). Batches in flight together
							// ride the same Elasticsearch refresh, so one at a time would cap indexing at a
							// batch per second.
							maxInFlight: SEARCH_INDEX_IN_FLIGHT,
							deadLettering: { enabled: true, queueName: SEARCH_DEAD_LETTER_CHANNEL },
							nats: {
								// Consume what was published before this consumer first existed, too.
								consumerOptions: { config: { deliver_policy: "all" } },
								streamConfig: SEARCH_STREAM_LIMITS,
							},
							// The adapter redelivers a failed batch at once, so five failures take milliseconds:
							// ride out an Elasticsearch restart here before a batch counts as failed.
							async handler(this: Service, payload: SearchIndexPayload) {
								await withRetries(SEARCH_INDEX_PATIENCE_MS, (err) => this.logger.warn(`search indexing failed, retrying: ${err.message}`), () =>
									this.broker.call("search.index", payload, { nodeID: this.broker.nodeID }),
								);
							},
						},
					},
				}
			: {}),

		actions: {
			/** Feeds an index that needs it (Elasticsearch), with the members who may find each message. */
			index: {
				visibility: "public",
				params: { messages: { type: "array", items: "object" } },
				async handler(ctx: Context<{ messages: Message[] }>): Promise<void> {
					if (!isFed(index)) return;
					const membersOf = new Map<string, string[]>();
					for (const m of ctx.params.messages) {
						if (membersOf.has(m.conversationId)) continue;
						const members = await ctx.call<MemberRef[], { conversationId: string }>("conversations.members", { conversationId: m.conversationId });
						membersOf.set(m.conversationId, members.map((x) => x.userId));
					}
					await index.index(ctx.params.messages.map((message) => ({ message, memberIds: membersOf.get(message.conversationId) ?? [] })));
				},
			},

			/** Operator command (REPL: `call search.reindex`): rebuilds the index from the store. */
			reindex: {
				visibility: "public",
				timeout: 0,
				async handler(ctx: Context): Promise<{ engine: string; messages?: number }> {
					if (!isFed(index)) {
						await (index as SelfMaintainedSearchIndex).rebuild();
						return { engine: index.engine };
					}
					await index.reset();
					const { messages } = await ctx.call<{ messages: number }>("messages.replayToSearch");
					return { engine: index.engine, messages };
				},
			},

			messages: {
				visibility: "published",
				params: {
					q: { type: "string", min: 1, max: 200 },
					conversationId: { ...ID, optional: true },
					limit: optionalLimit(config.limits.searchMaxLimit),
				},
				async handler(ctx: Context<ParamsOf<"search.messages">, CallerMeta>): Promise<ResultOf<"search.messages">> {
					const user = callerOf(ctx);
					let conversationIds: string[];
					if (ctx.params.conversationId) {
						await requireMember(ctx, ctx.params.conversationId);
						conversationIds = [ctx.params.conversationId];
					} else {
						const memberships = await ctx.call<{ conversationId: string }[], { userId: string }>("conversations.memberships", { userId: user.id });
						conversationIds = memberships.map((m) => m.conversationId);
					}
					try {
						return { hits: await index.search({ text: ctx.params.q, conversationIds, limit: ctx.params.limit ?? 20 }) };
					} catch (err) {
						this.logger.warn("search engine failed:", (err as Error).message);
						throw unavailable("Search is temporarily unavailable, retry shortly");
					}
				},
			},
		},
	};
}
