/**
 * A call made with no params (`emit("call", "conversations.list", ack)`) arrives
 * with `ctx.params === null`; give every action an object, as validation assumes.
 */
import type { Context, Middleware } from "moleculer";

type Handler = (ctx: Context) => unknown;

export const paramsAlwaysObject = {
	name: "ParamsAlwaysObject",
	localAction(handler: Handler) {
		return (ctx: Context) => {
			if (ctx.params === null || ctx.params === undefined) ctx.setParams({});
			return handler(ctx);
		};
	},
} as unknown as Middleware;
