/*
 * Column headers of the rows tachyond formats for tachyonctl's per-worker tables; one
 * place, so the header and the row format (control/tq_telemetry.c) stay side by side.
 */
#ifndef TQ_TELEMETRY_ROWS_H
#define TQ_TELEMETRY_ROWS_H

#define TQ_ARP_ROW_HEADER "ipv4 mac port state"
#define TQ_ARP_ROW_FMT "%-15s %-17s port%-2u %s"

#define TQ_CONN_ROW_HEADER                                                                         \
	"local                 remote                state        snd_wnd  rcv_wnd    cwnd   "       \
	"srtt_us  rto_ms  unacked+unsent  rx_held"
#define TQ_CONN_ROW_FMT "%-21s %-21s %-12s %8u %8u %8u %8u %7u %15u %8u"

#endif
