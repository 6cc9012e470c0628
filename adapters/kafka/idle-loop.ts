// kafkajs 2.2.4, its last release, keeps a 1 ms timer running on every broker
// connection while nothing waits: RequestQueue.scheduleCheckPendingRequests
// arms a timer for `throttledUntil - Date.now()` ms, and throttledUntil is -1
// when no throttle is in force, so the delay is negative (Node makes it 1 ms
// and, since Node 24, warns TimeoutNegativeWarning); the timer calls
// checkPendingRequests, which arms it again, for ever (kafkajs issue #1751,
// open). An idle turnout on Kafka spent 3 % of a core in it.
//
// The replacement arms the timer only when a request waits or a throttle is
// yet to end. Nothing is lost by not polling: a request that has to wait
// arms the timer itself (RequestQueue.push → scheduleCheckPendingRequests),
// and each answered or timed-out request checks the queue again
// (checkPendingRequests). Applied once, when the Kafka adapter is loaded.

import RequestQueue from 'kafkajs/src/network/requestQueue/index.js';

/** kafkajs's own interval for re-checking waiting requests (CHECK_PENDING_REQUESTS_INTERVAL). */
const PENDING_CHECK_MS = 10;

RequestQueue.prototype.scheduleCheckPendingRequests = function scheduleCheckPendingRequests(this: RequestQueue): void {
  if (this.throttleCheckTimeoutId) return;
  const throttleLeft = this.throttledUntil - Date.now();
  let delay: number;
  if (this.pending.length > 0) delay = throttleLeft > 0 ? throttleLeft : PENDING_CHECK_MS;
  else if (throttleLeft > 0) delay = throttleLeft;
  else return;
  this.throttleCheckTimeoutId = setTimeout(() => {
    this.throttleCheckTimeoutId = null;
    this.checkPendingRequests();
  }, delay);
};
