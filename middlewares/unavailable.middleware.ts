/**
 * In a cluster, an action another service needs can be momentarily without a
 * node (one crashed, the rest not yet discovered). Moleculer reports that as
 * ServiceNotFoundError, which a client would read as "unknown action" and give
 * up; inside our services it is a transient outage, so say UNAVAILABLE and let
 * the client retry. The gateway is left out: there the error may be a client
 * calling an action it may not call.
 */
import type { ActionSchema, Context, Middleware } from "moleculer";
import { unavailable } from "../lib/errors";

type Handler = (ctx: Context) => Promise<unknown>;

export const missingServiceIsTransient = {
	name: "MissingServiceIsTransient",
	localAction(handler: Handler, action: ActionSchema & { service?: { name?: string } }) {
		if (action.service?.name === "gateway") return handler;
		return async (ctx: Context) => {
			try {
				return await handler(ctx);
			} catch (err) {
				if ((err as Error)?.name === "ServiceNotFoundError") throw unavailable("A service this call needs is restarting, retry");
				throw err;
			}
		};
	},
} as unknown as Middleware;
