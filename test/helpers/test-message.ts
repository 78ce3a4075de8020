// The conformance suite's test message (courier-bus/conformance), shared with every test.
export { testMessage, bodyN } from '../../lib/conformance/messages';
