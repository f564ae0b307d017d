/**
 * How a bench message carries what the recipient needs: its numeric id in the
 * clientMsgId and its intended send time at the start of the text. Senders and
 * recipients live in the same generator process, so performance.now() is one
 * clock for both ends and the latency needs no cross-process clock sync.
 */

const CLIENT_MSG_ID_PREFIX = "bench-";

/** About the size of a typical chat line. */
const FILLER = " hello, is the blue bike still available? I can pick it up tomorrow.";

export const clientMsgIdOf = (gid: number): string => CLIENT_MSG_ID_PREFIX + gid;

export const gidOf = (clientMsgId: string): number => Number(clientMsgId.slice(CLIENT_MSG_ID_PREFIX.length));

export const textFor = (intendedAt: number): string => intendedAt.toFixed(3) + FILLER;

/** parseFloat stops at the first space, so it reads just the timestamp. */
export const intendedAtOf = (text: string): number => parseFloat(text);
