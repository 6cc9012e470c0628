// FIFO queues: messages of one MessageGroupId are worked one at a time, in
// order. The group's head is being handled; the others wait behind it. When
// the head goes back to SQS, what followed it must go back too (it must not
// overtake the head), and in an order that keeps the group's order.

export interface GroupStep<T> {
  /** The group's next message: start it now. */
  next?: T;
  /** Messages that must go back to SQS with (or after) the head, in the group's order. */
  followers: T[];
}

export class FifoGroups<T> {
  /** Per group, the held messages in order; the head is being worked on. */
  private readonly groups = new Map<string, T[]>();

  /** Adds a received message; true when it heads its group (start it now), false when it waits. */
  admit(group: string, item: T): boolean {
    const list = this.groups.get(group);
    if (list) {
      list.push(item);
      return false;
    }
    this.groups.set(group, [item]);
    return true;
  }

  /** Every message held in any group, heads included. */
  items(): T[] {
    return [...this.groups.values()].flat();
  }

  /**
   * The group's head is decided. Unless `dropFollowers` (the head goes back,
   * or the subscription stops), the next message of the group is to start;
   * otherwise every follower is handed back and the group is forgotten.
   * Something that is not the group's head changes nothing.
   */
  finish(group: string, head: T, dropFollowers: boolean): GroupStep<T> {
    const list = this.groups.get(group);
    if (!list || list[0] !== head) return { followers: [] };
    list.shift();
    if (list.length === 0) {
      this.groups.delete(group);
      return { followers: [] };
    }
    if (dropFollowers) {
      this.groups.delete(group);
      return { followers: list };
    }
    return { next: list[0] as T, followers: [] };
  }
}

/**
 * The order in which to hand messages of a group back: later ones first, so
 * that an emulator that puts released FIFO messages back at the head of
 * their group still ends up with the group's order.
 */
export function releaseOrder<T>(inGroupOrder: readonly T[]): T[] {
  return [...inGroupOrder].reverse();
}
