/**
 * The lines lanchat writes into a message's text for machines.
 *
 * @module
 */

/**
 * Starts a line lanchat writes into a message's text for machines (a file
 * offer, an automatic reply, a group): no text a person sends may carry it,
 * so no one can forge such a line by typing it.
 */
export const MACHINE_LINE = "\u0001lanchat-";
