import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The Java client against a real event store, as a plain main: each check prints "ok" or
 * "not ok", the last line is "N passed, N failed", and any failure exits 1. Run by
 * `make test` inside the test cluster (PGHOST, PGPORT, PGUSER); it makes its own database.
 */
public final class ClientCheck {
    private interface Check {
        void run() throws Exception;
    }

    private static final String ORDER = "Order";
    private static String database;

    public static void main(String[] args) throws Exception {
        Path root = Path.of(args.length > 0 ? args[0] : ".");
        database = "eventstore_java_" + UUID.randomUUID().toString().substring(0, 8);
        try (Connection admin = connect("postgres"); Statement statement = admin.createStatement()) {
            statement.execute("CREATE DATABASE " + database);
        }
        int failed;
        try {
            try (Connection setup = connect(database); Statement statement = setup.createStatement()) {
                statement.execute(Files.readString(root.resolve("build/eventstore.sql")));
                statement.execute(Files.readString(root.resolve("examples/orders/orders.sql")));
            }
            failed = runChecks();
        } finally {
            try (Connection admin = connect("postgres"); Statement statement = admin.createStatement()) {
                statement.execute("DROP DATABASE " + database + " WITH (FORCE)");
            }
        }
        System.exit(failed == 0 ? 0 : 1);
    }

    private static int runChecks() {
        Map<String, Check> checks = new LinkedHashMap<>();
        checks.put("-1 creates the aggregate; the stored rows carry their feed positions", ClientCheck::appendNew);
        checks.put("a conflict is ES001 with the actual version, which a reload confirms", ClientCheck::conflict);
        checks.put("a retry with the same event ids returns the stored rows and appends nothing", ClientCheck::retry);
        checks.put("an expected version below -1 is refused before the database", ClientCheck::guard);
        checks.put("an event's own occurred_at finds the state after it", ClientCheck::stateAtTime);
        checks.put("positions compare as (feed_key, id), not as text", ClientCheck::positions);
        checks.put("follows from a saved position: catch-up, then NOTIFY wakes it", ClientCheck::follow);
        checks.put("an event held back by the fence arrives at the next poll", ClientCheck::poll);
        int passed = 0;
        int failed = 0;
        for (Map.Entry<String, Check> check : checks.entrySet()) {
            try {
                check.getValue().run();
                passed++;
                System.out.println("ok - " + check.getKey());
            } catch (Exception | AssertionError error) {
                failed++;
                System.out.println("not ok - " + check.getKey() + ": " + error);
                error.printStackTrace(System.out);
            }
        }
        System.out.println(passed + " passed, " + failed + " failed");
        return failed;
    }

    private static Connection connect(String databaseName) throws SQLException {
        Properties properties = new Properties();
        properties.setProperty("user", env("PGUSER", System.getProperty("user.name")));
        String password = System.getenv("PGPASSWORD");
        if (password != null) {
            properties.setProperty("password", password);
        }
        String url = "jdbc:postgresql://" + env("PGHOST", "localhost") + ":" + env("PGPORT", "5432") + "/" + databaseName;
        return DriverManager.getConnection(url, properties);
    }

    private static String env(String name, String otherwise) {
        String value = System.getenv(name);
        return value == null || value.isEmpty() ? otherwise : value;
    }

    private static void check(boolean condition, String what) {
        if (!condition) {
            throw new AssertionError(what);
        }
    }

    private static void checkEqual(Object expected, Object actual, String what) {
        if (!expected.equals(actual)) {
            throw new AssertionError(what + ": expected " + expected + ", got " + actual);
        }
    }

    private static EventStore.NewEvent placed(String orderNumber) {
        return EventStore.NewEvent.of("OrderPlaced",
                "{\"orderNumber\": \"" + orderNumber + "\", \"customerId\": \"" + UUID.randomUUID() + "\"}");
    }

    private static int eventCount(Connection connection, UUID aggregateId) throws SQLException {
        try (PreparedStatement count = connection.prepareStatement(
                "SELECT count(*) FROM eventstore.load_events(?)")) {
            count.setObject(1, aggregateId);
            try (ResultSet rows = count.executeQuery()) {
                rows.next();
                return rows.getInt(1);
            }
        }
    }

    private static void appendNew() throws SQLException {
        try (Connection connection = connect(database)) {
            EventStore store = new EventStore(connection);
            UUID id = UUID.randomUUID();
            List<EventStore.RecordedEvent> stored = store.append(ORDER, id, EventStore.NO_STREAM, List.of(placed("J-1")));
            checkEqual(1, stored.size(), "rows returned");
            checkEqual(0, stored.get(0).version(), "version");
            checkEqual(id, stored.get(0).aggregateId(), "aggregate id");
            check(stored.get(0).payloadJson().contains("\"J-1\""), "payload stored: " + stored.get(0).payloadJson());
            check(stored.get(0).feedPosition().feedKey() > 0, "a feed position");
        }
    }

    private static void conflict() throws SQLException {
        try (Connection connection = connect(database)) {
            EventStore store = new EventStore(connection);
            UUID id = UUID.randomUUID();
            store.append(ORDER, id, EventStore.NO_STREAM, List.of(placed("J-2")));
            store.append(ORDER, id, 0, List.of(EventStore.NewEvent.of("OrderShipped", "{\"carrier\": \"DHL\"}")));
            try {
                store.append(ORDER, id, 0, List.of(EventStore.NewEvent.of("OrderCancelled", "{}")));
                throw new AssertionError("a stale expected version must not append");
            } catch (EventStore.ConcurrencyException conflict) {
                checkEqual("ES001", conflict.getSQLState(), "SQLSTATE");
                checkEqual(1, conflict.actualVersion().orElseThrow(), "actual version from the DETAIL");
                EventStore.State current = store.load(ORDER, id).orElseThrow();
                checkEqual(1, current.version(), "reloaded version");
                List<EventStore.RecordedEvent> stored = store.append(ORDER, id, current.version(),
                        List.of(EventStore.NewEvent.of("OrderDelivered", "{}")));
                checkEqual(2, stored.get(0).version(), "version after the retry");
            }
        }
    }

    private static void retry() throws SQLException {
        try (Connection connection = connect(database)) {
            EventStore store = new EventStore(connection);
            UUID id = UUID.randomUUID();
            List<EventStore.NewEvent> events = List.of(placed("J-3"),
                    EventStore.NewEvent.of("OrderShipped", "{\"carrier\": \"UPS\"}"));
            List<EventStore.RecordedEvent> first = store.append(ORDER, id, EventStore.NO_STREAM, events);
            List<EventStore.RecordedEvent> retried = store.append(ORDER, id, EventStore.NO_STREAM, events);
            checkEqual(first, retried, "the retry's rows");
            checkEqual(2, eventCount(connection, id), "events stored");
        }
    }

    private static void guard() throws SQLException {
        try (Connection connection = connect(database)) {
            EventStore store = new EventStore(connection);
            UUID id = UUID.randomUUID();
            store.append(ORDER, id, EventStore.NO_STREAM, List.of(placed("J-4")));
            try {
                store.append(ORDER, id, -2, List.of(EventStore.NewEvent.of("OrderShipped", "{}")));
                throw new AssertionError("-2 must be refused");
            } catch (IllegalArgumentException expected) {
                checkEqual(1, eventCount(connection, id), "events stored");
            }
            List<EventStore.RecordedEvent> stored = store.appendAnyVersion(ORDER, id,
                    List.of(EventStore.NewEvent.of("OrderShipped", "{}")));
            checkEqual(1, stored.get(0).version(), "appended at the end");
        }
    }

    private static void stateAtTime() throws SQLException {
        try (Connection connection = connect(database)) {
            EventStore store = new EventStore(connection);
            UUID id = UUID.randomUUID();
            EventStore.RecordedEvent placedEvent = store.append(ORDER, id, EventStore.NO_STREAM, List.of(placed("J-5")))
                    .get(0);
            EventStore.RecordedEvent shipped = store.append(ORDER, id, 0,
                    List.of(EventStore.NewEvent.of("OrderShipped", "{\"carrier\": \"DHL\"}"))).get(0);
            EventStore.State atPlaced = store.stateAt(ORDER, id, placedEvent.occurredAt()).orElseThrow();
            checkEqual(0, atPlaced.version(), "version at the first event's time");
            check(atPlaced.stateJson().contains("\"placed\""), "placed: " + atPlaced.stateJson());
            EventStore.State atShipped = store.stateAt(ORDER, id, shipped.occurredAt()).orElseThrow();
            checkEqual(1, atShipped.version(), "version at the second event's time");
            check(atShipped.stateJson().contains("\"shipped\""), "shipped: " + atShipped.stateJson());
            checkEqual(atPlaced, store.stateAtVersion(ORDER, id, 0).orElseThrow(), "state at version 0");
            check(store.stateAt(ORDER, id, placedEvent.occurredAt().minusNanos(1000)).isEmpty(),
                    "no state a microsecond before the first event");
        }
    }

    private static void positions() {
        EventStore.FeedPosition nine = EventStore.FeedPosition.parse("(9,7)");
        EventStore.FeedPosition ten = EventStore.FeedPosition.parse("(10,5)");
        check(nine.compareTo(ten) < 0, "(9,7) before (10,5)");
        check("(9,7)".compareTo("(10,5)") > 0, "as text they sort the other way");
        check(ten.compareTo(EventStore.FeedPosition.parse("(10,12)")) < 0, "same key: by id");
        checkEqual("(-1,0)", EventStore.FeedPosition.parse("(-1,0)").toString(), "text form round trip");
        try {
            EventStore.FeedPosition.parse("(1, 2)");
            throw new AssertionError("a malformed position must be refused");
        } catch (IllegalArgumentException expected) {
            // refused
        }
    }

    // A follower on its own connection and thread, handing events to a queue.
    private static final class Follower implements AutoCloseable {
        final BlockingQueue<EventStore.RecordedEvent> received = new LinkedBlockingQueue<>();
        final List<Throwable> errors = new ArrayList<>();
        final AtomicBoolean stop = new AtomicBoolean();
        final Connection connection;
        final Thread thread;

        Follower(EventStore.FeedPosition after, Duration pollInterval) throws SQLException {
            connection = connect(database);
            EventStore store = new EventStore(connection);
            thread = new Thread(() -> {
                try {
                    store.follow(after, 500, pollInterval, received::add, stop::get);
                } catch (SQLException | RuntimeException error) {
                    errors.add(error);
                }
            });
            thread.start();
        }

        EventStore.RecordedEvent next(long millis) throws InterruptedException {
            EventStore.RecordedEvent event = received.poll(millis, TimeUnit.MILLISECONDS);
            check(errors.isEmpty(), "the follower failed: " + errors);
            return event;
        }

        @Override
        public void close() throws SQLException {
            stop.set(true);
            try {
                thread.join(10_000);
            } catch (InterruptedException interrupted) {
                Thread.currentThread().interrupt();
            }
            check(!thread.isAlive(), "the follower must stop when asked");
            connection.close();
            check(errors.isEmpty(), "the follower failed: " + errors);
        }
    }

    private static void follow() throws Exception {
        try (Connection connection = connect(database)) {
            EventStore store = new EventStore(connection);
            UUID id = UUID.randomUUID();
            EventStore.RecordedEvent saved = store.append(ORDER, id, EventStore.NO_STREAM, List.of(placed("J-6")))
                    .get(0);
            List<EventStore.RecordedEvent> backlog = store.append(ORDER, id, 0, List.of(
                    EventStore.NewEvent.of("OrderShipped", "{\"carrier\": \"DHL\"}"),
                    EventStore.NewEvent.of("OrderDelivered", "{}")));
            // A poll interval longer than the check: only a notification wakes it in time.
            try (Follower follower = new Follower(saved.feedPosition(), Duration.ofSeconds(60))) {
                checkEqual(backlog.get(0), follower.next(5000), "first event after the saved position");
                checkEqual(backlog.get(1), follower.next(5000), "second event");
                EventStore.RecordedEvent late = store.append(ORDER, UUID.randomUUID(), EventStore.NO_STREAM,
                        List.of(placed("J-7"))).get(0);
                EventStore.RecordedEvent woken = follower.next(5000);
                check(woken != null, "a notification must wake the follower");
                checkEqual(late.eventId(), woken.eventId(), "the new event");
                checkEqual(late.feedPosition(), woken.feedPosition(), "the append knew its own feed position");
            }
        }
    }

    private static void poll() throws Exception {
        try (Connection connection = connect(database); Connection holder = connect(database)) {
            EventStore store = new EventStore(connection);
            EventStore.RecordedEvent head = store.append(ORDER, UUID.randomUUID(), EventStore.NO_STREAM,
                    List.of(placed("J-8"))).get(0);
            try (Follower follower = new Follower(head.feedPosition(), Duration.ofMillis(200))) {
                // An older transaction that has appended holds the fence; it rolls back,
                // so nothing notifies when the fence moves.
                holder.setAutoCommit(false);
                new EventStore(holder).append(ORDER, UUID.randomUUID(), EventStore.NO_STREAM, List.of(placed("J-X")));
                EventStore.RecordedEvent held = store.append(ORDER, UUID.randomUUID(), EventStore.NO_STREAM,
                        List.of(placed("J-9"))).get(0);
                check(follower.next(1000) == null, "the event must wait behind the fence");
                holder.rollback();
                EventStore.RecordedEvent polled = follower.next(5000);
                check(polled != null, "the next poll must find the event");
                checkEqual(held.eventId(), polled.eventId(), "the held event");
            }
        }
    }
}
