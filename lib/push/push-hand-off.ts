/**
 * Hands push work to the push channel in batches: everything submitted in one
 * turn of the event loop goes as one channel message, so a busy conversation
 * costs one publish (and the push service one device look-up) per batch, not
 * per message.
 */
import { Batcher } from "../batcher";
import type { PushJob } from "./notifications";
import { PUSH_CHANNEL } from "./push-channel";

export interface PushBatch {
	jobs: PushJob[];
}

type Publish = (channel: string, payload: PushBatch) => Promise<unknown>;

export class PushHandOff {
	private readonly batcher: Batcher<PushJob, void>;

	constructor(publish: Publish, onError: (err: Error) => void) {
		this.batcher = new Batcher<PushJob, void>(
			async (jobs) => {
				// Best effort after the commit: a failed hand-off costs pushes, never the message.
				await publish(PUSH_CHANNEL, { jobs }).catch(onError);
				return jobs.map(() => undefined);
			},
			{ delayMs: 0, maxItems: 500 },
		);
	}

	submit(job: PushJob): void {
		void this.batcher.submit(job);
	}

	drain(): Promise<void> {
		return this.batcher.drain();
	}
}
