-- A group message that waited for its Megolm key keeps its Waku timestamp: when the
-- key comes and it authenticates, it moves the topic's catch-up point like a message
-- read at once (client/group_topic.py). NULL (rows from before): it moves nothing.
ALTER TABLE client_group_pending ADD COLUMN timestamp_ns INTEGER;
