/*
 * A Kafka-protocol broker for the integration tests: librdkafka's mock
 * cluster (rd_kafka_mock_cluster_new). Prints the bootstrap address on one
 * line, then serves until stdin closes, so a test runner that dies never
 * leaves it behind.
 *
 *   mock-cluster [brokers]            (default 1)
 *
 * The mock has no CreateTopics handler and creates any topic a Metadata
 * request names, so topics are managed through stdin lines instead, each
 * answered with one line ("ok" or "error <name>"):
 *
 *   create <topic> <partitions>       a new topic
 *   missing <topic>                   behave like a broker with auto-creation
 *                                     off: Metadata says the topic is unknown
 *   restore <topic>                   undo `missing`: the topic exists (again)
 *   fail-produce <error code> <count> the next <count> Produce requests, from
 *                                     any client to any broker, fail with
 *                                     that Kafka error code (e.g. 10,
 *                                     MESSAGE_TOO_LARGE: the mock does not
 *                                     enforce message.max.bytes itself)
 */
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
        char errstr[512], line[1024], topic[512];
        int brokers = argc > 1 ? atoi(argv[1]) : 1, partitions, code, count;
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        /* The handle only does the cluster's bookkeeping; keep it quiet. */
        rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr));
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                fprintf(stderr, "mock-cluster: %s\n", errstr);
                return 1;
        }
        rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers < 1 ? 1 : brokers);
        if (!mc) {
                fprintf(stderr, "mock-cluster: could not create the cluster\n");
                return 1;
        }
        printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
        fflush(stdout);
        while (fgets(line, sizeof(line), stdin)) {
                rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_INVALID_REQUEST;
                if (sscanf(line, "create %511s %d", topic, &partitions) == 2)
                        err = rd_kafka_mock_topic_create(mc, topic, partitions, brokers < 3 ? brokers : 3);
                else if (sscanf(line, "missing %511s", topic) == 1) {
                        rd_kafka_mock_topic_set_error(mc, topic, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
                        err = RD_KAFKA_RESP_ERR_NO_ERROR;
                } else if (sscanf(line, "fail-produce %d %d", &code, &count) == 2 && count > 0) {
                        /* ApiKey 0 is Produce. */
                        rd_kafka_resp_err_t errs[64];
                        if (count > 64) count = 64;
                        for (int i = 0; i < count; i++) errs[i] = (rd_kafka_resp_err_t)code;
                        rd_kafka_mock_push_request_errors_array(mc, 0, (size_t)count, errs);
                        err = RD_KAFKA_RESP_ERR_NO_ERROR;
                } else if (sscanf(line, "restore %511s", topic) == 1) {
                        rd_kafka_mock_topic_set_error(mc, topic, RD_KAFKA_RESP_ERR_NO_ERROR);
                        err = RD_KAFKA_RESP_ERR_NO_ERROR;
                }
                if (err)
                        printf("error %s\n", rd_kafka_err2name(err));
                else
                        printf("ok\n");
                fflush(stdout);
        }
        rd_kafka_mock_cluster_destroy(mc);
        rd_kafka_destroy(rk);
        return 0;
}
