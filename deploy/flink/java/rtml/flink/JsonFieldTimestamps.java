package rtml.flink;

import java.nio.charset.StandardCharsets;
import java.time.OffsetDateTime;
import java.time.format.DateTimeParseException;

import org.apache.flink.api.common.eventtime.SerializableTimestampAssigner;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonFactory;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonParser;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.JsonToken;

/**
 * The event time of a raw Kafka record (JSON bytes, or a string), read in the Kafka source so that Flink
 * generates a watermark per partition: a reader that holds several partitions and catches up
 * one of them faster (after a restart, a backlog) then cannot move the watermark past the
 * events of the others.
 *
 * <p>Mirrors {@code udfs.validation.parse_timestamp} and the range checks of
 * {@code parse_event}: epoch milliseconds, or seconds when the field's unit says so (integer
 * or float, truncated), or ISO-8601 with a zone. A record whose time Python would reject, or that this class cannot read, gets 0 (as
 * {@code udfs.flink.records.FieldTimestamp} gives a tagged record): it does not move the
 * watermark on (Python dead-letters it, or applies it by its own reading of the field). The wall clock here is read before Python's, so every time accepted
 * here is accepted there too.
 */
public final class JsonFieldTimestamps implements SerializableTimestampAssigner<Object> {
    private static final long serialVersionUID = 1L;
    private static final JsonFactory JSON = new JsonFactory();
    /** The time of a record without one: never moves the watermark on, and is a valid Kafka
     * timestamp for the dead letter it becomes. */
    public static final long NONE = 0L;

    private final String field;
    private final long minTimeMs;
    private final long maxFutureMs;
    private final long unitMs; // 1: numbers are epoch milliseconds; 1000: epoch seconds

    public JsonFieldTimestamps(String field, long minTimeMs, long maxFutureMs, long unitMs) {
        this.field = field;
        this.minTimeMs = minTimeMs;
        this.maxFutureMs = maxFutureMs;
        this.unitMs = unitMs;
    }

    @Override
    public long extractTimestamp(Object value, long recordTimestamp) {
        byte[] bytes;
        if (value instanceof byte[]) { // a Kafka record's value
            bytes = (byte[]) value;
        } else if (value instanceof String) { // a stream of strings (tests, bounded replays)
            bytes = ((String) value).getBytes(StandardCharsets.UTF_8);
        } else {
            return NONE;
        }
        long ts;
        try {
            ts = read(bytes);
        } catch (Exception e) { // not JSON, not UTF-8, not a time: Python dead-letters it
            return NONE;
        }
        if (ts == Long.MIN_VALUE || ts < minTimeMs || ts > System.currentTimeMillis() + maxFutureMs) {
            return NONE;
        }
        return ts;
    }

    /** The field's value at the top level of the object (the last one if it repeats). */
    private long read(byte[] value) throws Exception {
        long ts = Long.MIN_VALUE;
        try (JsonParser p = JSON.createParser(value)) {
            if (p.nextToken() != JsonToken.START_OBJECT) {
                return Long.MIN_VALUE;
            }
            JsonToken t;
            while ((t = p.nextToken()) == JsonToken.FIELD_NAME) {
                String name = p.currentName();
                JsonToken v = p.nextToken();
                if (field.equals(name)) {
                    ts = time(p, v, unitMs);
                } else if (v == JsonToken.START_OBJECT || v == JsonToken.START_ARRAY) {
                    p.skipChildren();
                }
            }
            if (t != JsonToken.END_OBJECT || p.nextToken() != null) {
                return Long.MIN_VALUE; // truncated, or text after the object: not one JSON value
            }
        }
        return ts;
    }

    private static long time(JsonParser p, JsonToken v, long unitMs) throws Exception {
        switch (v) {
            case VALUE_NUMBER_INT:
                if (p.getNumberType() == JsonParser.NumberType.BIG_INTEGER) {
                    return Long.MIN_VALUE;
                }
                try {
                    return Math.multiplyExact(p.getLongValue(), unitMs);
                } catch (ArithmeticException e) {
                    return Long.MIN_VALUE;
                }
            case VALUE_NUMBER_FLOAT:
                double d = p.getDoubleValue() * unitMs;
                return Double.isFinite(d) && Math.abs(d) < 9.0e18 ? (long) d : Long.MIN_VALUE;
            case VALUE_STRING:
                return iso(p.getText());
            case START_OBJECT:
            case START_ARRAY:
                p.skipChildren();
                return Long.MIN_VALUE;
            default: // true, false, null
                return Long.MIN_VALUE;
        }
    }

    private static long iso(String s) {
        try {
            // Python reads the same text to within float rounding of a millisecond: a
            // millisecond less here, so the watermark never passes Python's time of it
            return OffsetDateTime.parse(s.replace("Z", "+00:00")).toInstant().toEpochMilli() - 1;
        } catch (DateTimeParseException e) {
            return Long.MIN_VALUE; // forms Python reads and this does not: no watermark from it
        }
    }
}
