// The bounded waits are the conformance suite's (courier-bus/conformance), shared with every test.
export { waitFor, sleep, uniq } from '../../lib/conformance/wait';
