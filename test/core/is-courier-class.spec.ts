import assert from 'node:assert/strict';
import { isCourierClass, Message, Publish, Publisher, Subscribe, Subscriber } from 'courier-bus';

@Message('is-courier-class.ping')
class Ping {}

describe('isCourierClass: what a framework discovery registers', () => {
  it('is true for a class with @Subscriber, @Publisher, @Subscribe or @Publish, own or inherited', () => {
    @Subscriber()
    class WithSubscriber {}
    @Publisher()
    class WithPublisher {}
    class WithSubscribe {
      @Subscribe(Ping)
      on(): void {}
    }
    class WithPublish {
      @Publish(Ping)
      send() {
        return {};
      }
    }
    class Inherits extends WithSubscribe {}
    for (const cls of [WithSubscriber, WithPublisher, WithSubscribe, WithPublish, Inherits]) assert.equal(isCourierClass(cls), true, cls.name);
  });

  it('is false for other classes, payload classes and non-functions', () => {
    class Plain {
      method(): void {}
    }
    for (const value of [Plain, Ping, Object, undefined, null, {}, 'OrderService']) assert.equal(isCourierClass(value), false, String(value));
  });
});
