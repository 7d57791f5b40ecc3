import java.sql.Array;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.sql.Types;
import java.time.Duration;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.postgresql.PGConnection;
import org.postgresql.util.PSQLException;

/**
 * A small pg_eventstore client over JDBC. Every method is one call of the SQL API
 * (docs/sql-reference.md); docs/other-languages.md explains the choices made here and
 * quotes this file.
 */
public final class EventStore {
    public static final String CHANNEL = "eventstore_events";
    /** Expected version of an aggregate that must not exist yet. */
    public static final int NO_STREAM = -1;

    private static final String EVENT_COLUMNS = "id, event_id, aggregate_type, aggregate_id, event_type,"
            + " event_version, payload::text, metadata::text, occurred_at";

    // The database builds the events' JSON from typed arrays: no JSON written by hand here.
    // Each payload is JSON text from the caller's JSON library, cast with ::jsonb.
    private static final String APPEND = "SELECT " + EVENT_COLUMNS
            + ", (feed_key, id)::eventstore.feed_position::text AS feed_position"
            + " FROM eventstore.append_events(?, ?, ?, ("
            + "   SELECT jsonb_agg(jsonb_build_object("
            + "       'event_type', e.event_type, 'payload', e.payload::jsonb, 'event_id', e.event_id) ORDER BY e.n)"
            + "   FROM unnest(?::text[], ?::text[], ?::uuid[]) WITH ORDINALITY AS e (event_type, payload, event_id, n)))";

    private static final String READ_ALL = "SELECT " + EVENT_COLUMNS + ", feed_position::text AS feed_position"
            + " FROM eventstore.read_all(?::text, ?)";

    /** An event to append; the id is chosen before the first try so that a retry resends it. */
    public record NewEvent(String eventType, String payloadJson, UUID eventId) {
        public static NewEvent of(String eventType, String payloadJson) {
            return new NewEvent(eventType, payloadJson, UUID.randomUUID());
        }
    }

    /** A stored event, with its position in the global feed. */
    public record RecordedEvent(long id, UUID eventId, String aggregateType, UUID aggregateId, String eventType,
            int version, String payloadJson, String metadataJson, OffsetDateTime occurredAt,
            FeedPosition feedPosition) {}

    /** An aggregate's state (JSON text) and the version it reflects. */
    public record State(String stateJson, int version) {}

    /**
     * A position in the feed. The text form "(feed_key,id)" is what to store; compare
     * positions with compareTo, never their text forms ("(10,5)" sorts before "(9,7)").
     */
    public record FeedPosition(long feedKey, long id) implements Comparable<FeedPosition> {
        private static final Pattern TEXT = Pattern.compile("\\((-?\\d+),(-?\\d+)\\)");

        public static FeedPosition parse(String text) {
            Matcher match = TEXT.matcher(text);
            if (!match.matches()) {
                throw new IllegalArgumentException("not a feed position: " + text);
            }
            return new FeedPosition(Long.parseLong(match.group(1)), Long.parseLong(match.group(2)));
        }

        @Override
        public int compareTo(FeedPosition other) {
            int byKey = Long.compare(feedKey, other.feedKey);
            return byKey != 0 ? byKey : Long.compare(id, other.id);
        }

        @Override
        public String toString() {
            return "(" + feedKey + "," + id + ")";
        }
    }

    /** SQLSTATE ES001: the aggregate is not at the expected version. */
    public static final class ConcurrencyException extends SQLException {
        private static final long serialVersionUID = 1L;
        // errors.md: the DETAIL always starts "stream <id>, expected version <n>, actual version <m>".
        private static final Pattern DETAIL = Pattern.compile("expected version (-?\\d+), actual version (-?\\d+)");
        private final Integer actualVersion;

        ConcurrencyException(PSQLException cause) {
            super(cause.getMessage(), cause.getSQLState(), cause);
            String detail = cause.getServerErrorMessage() == null ? null : cause.getServerErrorMessage().getDetail();
            Matcher match = DETAIL.matcher(detail == null ? "" : detail);
            actualVersion = match.find() ? Integer.valueOf(match.group(2)) : null;
        }

        /** The aggregate's version when the append was refused, if the DETAIL said. */
        public Optional<Integer> actualVersion() {
            return Optional.ofNullable(actualVersion);
        }
    }

    private final Connection connection;

    public EventStore(Connection connection) {
        this.connection = connection;
    }

    /**
     * Appends events to one aggregate, atomically, if it is at expectedVersion (-1: it
     * must not exist). Returns the stored events; a retry of a stored call returns them again.
     */
    public List<RecordedEvent> append(String aggregateType, UUID aggregateId, int expectedVersion,
            List<NewEvent> events) throws SQLException {
        if (expectedVersion < NO_STREAM) {
            throw new IllegalArgumentException("expected version must be >= -1, got " + expectedVersion);
        }
        return doAppend(aggregateType, aggregateId, expectedVersion, events);
    }

    /** Appends at the end without a version check: on purpose, never by a lost version. */
    public List<RecordedEvent> appendAnyVersion(String aggregateType, UUID aggregateId, List<NewEvent> events)
            throws SQLException {
        return doAppend(aggregateType, aggregateId, null, events);
    }

    private List<RecordedEvent> doAppend(String aggregateType, UUID aggregateId, Integer expectedVersion,
            List<NewEvent> events) throws SQLException {
        try (PreparedStatement append = connection.prepareStatement(APPEND)) {
            append.setString(1, aggregateType);
            append.setObject(2, aggregateId);
            if (expectedVersion == null) {
                append.setNull(3, Types.INTEGER);
            } else {
                append.setInt(3, expectedVersion);
            }
            append.setArray(4, array("text", events.stream().map(NewEvent::eventType).toArray()));
            append.setArray(5, array("text", events.stream().map(NewEvent::payloadJson).toArray()));
            append.setArray(6, array("uuid", events.stream().map(NewEvent::eventId).toArray()));
            return events(append);
        } catch (PSQLException error) {
            if ("ES001".equals(error.getSQLState())) {
                throw new ConcurrencyException(error);
            }
            throw error;
        }
    }

    /** The current state of an aggregate, or empty when it does not exist. */
    public Optional<State> load(String aggregateType, UUID aggregateId) throws SQLException {
        return state("SELECT state::text, version FROM eventstore.load_aggregate(?, ?)", aggregateType, aggregateId,
                null);
    }

    /** The state after the aggregate's last event with occurred_at <= asOf, or empty. */
    public Optional<State> stateAt(String aggregateType, UUID aggregateId, OffsetDateTime asOf)
            throws SQLException {
        return state("SELECT state::text, version FROM eventstore.aggregate_state_at(?, ?, ?)", aggregateType,
                aggregateId, asOf);
    }

    /** The state right after the aggregate's event `version`, or empty. */
    public Optional<State> stateAtVersion(String aggregateType, UUID aggregateId, int version) throws SQLException {
        return state("SELECT state::text, version FROM eventstore.aggregate_state_at_version(?, ?, ?)",
                aggregateType, aggregateId, version);
    }

    /** One page of the global feed after `after` (null: from the start). */
    public List<RecordedEvent> readAll(FeedPosition after, int maxCount) throws SQLException {
        try (PreparedStatement read = connection.prepareStatement(READ_ALL)) {
            read.setString(1, after == null ? null : after.toString());
            read.setInt(2, maxCount);
            return events(read);
        }
    }

    /** The re-read after activity and the idle poll, as the contract in docs/other-languages.md asks. */
    public static final Duration RECHECK_DELAY = Duration.ofMillis(50);
    public static final Duration POLL_INTERVAL = Duration.ofSeconds(1);

    /**
     * Hands every event of the feed after `after` to `handler`, then new ones as they become
     * readable, until `stopped` says so. Uses this store's connection, which must be one of
     * its own in autocommit mode (it LISTENs). Store each handled event's feedPosition and
     * pass it as `after` to resume. After activity (a notification, or a read that found
     * events) it reads again after RECHECK_DELAY; when idle it reads at least every pollInterval.
     */
    public void follow(FeedPosition after, int pageSize, Duration pollInterval, Consumer<RecordedEvent> handler,
            BooleanSupplier stopped) throws SQLException {
        PGConnection notifications = connection.unwrap(PGConnection.class);
        try (Statement statement = connection.createStatement()) {
            // LISTEN before the catch-up read: an append that commits during the read then
            // leaves a notification behind instead of going unnoticed until the next poll.
            statement.execute("LISTEN " + CHANNEL);
        }
        FeedPosition position = after;
        // The catch-up read counts as activity: read once more shortly after it.
        boolean active = true;
        try {
            while (!stopped.getAsBoolean()) {
                List<RecordedEvent> page = readAll(position, pageSize);
                for (RecordedEvent event : page) {
                    handler.accept(event);
                    position = event.feedPosition();
                }
                if (page.size() < pageSize) {
                    // A notification is only a hint: its events may still be behind the fence,
                    // and an append that commits while another one notifies sends none. So read
                    // again shortly after activity, and poll when idle.
                    Duration wait = active || !page.isEmpty() ? RECHECK_DELAY : pollInterval;
                    active = waitForNotification(notifications, wait, stopped);
                }
            }
        } finally {
            try (Statement statement = connection.createStatement()) {
                statement.execute("UNLISTEN " + CHANNEL);
            }
        }
    }

    // True when a notification arrives (also one queued during the last read); false when
    // the wait passes or `stopped` says so (checked every 100 ms).
    private static boolean waitForNotification(PGConnection notifications, Duration wait,
            BooleanSupplier stopped) throws SQLException {
        long deadline = System.nanoTime() + wait.toNanos();
        while (!stopped.getAsBoolean()) {
            long remainingMillis = (deadline - System.nanoTime()) / 1_000_000;
            if (remainingMillis <= 0) {
                return false;
            }
            // getNotifications(0) would block without end: wait at least 1 ms.
            var received = notifications.getNotifications((int) Math.max(1, Math.min(remainingMillis, 100)));
            if (received != null && received.length > 0) {
                return true;
            }
        }
        return false;
    }

    private Array array(String type, Object[] elements) throws SQLException {
        return connection.createArrayOf(type, elements);
    }

    private Optional<State> state(String sql, String aggregateType, UUID aggregateId, Object at)
            throws SQLException {
        try (PreparedStatement query = connection.prepareStatement(sql)) {
            query.setString(1, aggregateType);
            query.setObject(2, aggregateId);
            if (at != null) {
                query.setObject(3, at);
            }
            try (ResultSet rows = query.executeQuery()) {
                return rows.next() ? Optional.of(new State(rows.getString(1), rows.getInt(2))) : Optional.empty();
            }
        }
    }

    private static List<RecordedEvent> events(PreparedStatement statement) throws SQLException {
        List<RecordedEvent> events = new ArrayList<>();
        try (ResultSet rows = statement.executeQuery()) {
            while (rows.next()) {
                events.add(new RecordedEvent(
                        rows.getLong(1),
                        rows.getObject(2, UUID.class),
                        rows.getString(3),
                        rows.getObject(4, UUID.class),
                        rows.getString(5),
                        rows.getInt(6),
                        rows.getString(7),
                        rows.getString(8),
                        // java.time keeps the microseconds of occurred_at (a java.util.Date would not).
                        rows.getObject(9, OffsetDateTime.class),
                        FeedPosition.parse(rows.getString(10))));
            }
        }
        return events;
    }
}
