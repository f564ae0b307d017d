/** search: full-text search over the caller's own conversations only. */
import type { Context, ServiceSchema } from "moleculer";
import type { ParamsOf, ResultOf } from "../contract";
import type { Config } from "../config";
import { callerOf, requireMember, type CallerMeta } from "../mixins/caller";
import { createSearchIndex } from "../mixins/engines";
import { opensOnStart } from "../mixins/lifecycle.mixin";
import { ID, optionalLimit } from "../mixins/params";

export default function searchService(config: Config): ServiceSchema {
	const index = createSearchIndex(config);

	return {
		name: "search",
		mixins: [opensOnStart(index)],

		actions: {
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
					const hits = await index.search({ text: ctx.params.q, conversationIds, limit: ctx.params.limit ?? 20 });
					return { hits };
				},
			},
		},
	};
}
