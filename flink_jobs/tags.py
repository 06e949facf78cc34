"""Every output tag of the job, defined once and reused by the graph."""

from pyflink.common import Types
from pyflink.datastream import OutputTag

DEAD_LETTERS = OutputTag("dead-letters", Types.STRING())
LABEL_DEAD_LETTERS = OutputTag("label-dead-letters", Types.STRING())
LATE_EVENTS = OutputTag("late-events", Types.STRING())
ALERTS = OutputTag("alerts", Types.STRING())  # fairness breaches and drifted windows
SCORES_JSON = OutputTag("scores-json", Types.STRING())  # what the scores topic receives
MODEL_EVENTS = OutputTag("model-events", Types.STRING())  # models activated or rejected
SHADOW = OutputTag("shadow", Types.STRING())  # live vs candidate score while a candidate shadows
