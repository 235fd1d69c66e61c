package streamem.bench;

import com.amazon.randomcutforest.config.ForestMode;
import com.amazon.randomcutforest.config.Precision;
import com.amazon.randomcutforest.config.TransformMethod;
import com.amazon.randomcutforest.parkservices.AnomalyDescriptor;
import com.amazon.randomcutforest.parkservices.ThresholdedRandomCutForest;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Streams rows through AWS's ThresholdedRandomCutForest, configured as OpenSearch Anomaly
 * Detection configures it, and writes one score per row.
 *
 * <p>Usage: {@code RcfRunner DIMS SHINGLE TREES SAMPLE SEED}. Standard input carries rows of
 * DIMS little-endian float64 values, back to back; standard output gets, per row, two
 * little-endian float64 values: the RCF anomaly score and the anomaly grade of that row, both
 * computed by {@code process} BEFORE the row updates the forest (score, then learn). A row
 * the forest cannot score yet (fewer than outputAfter rows seen, or an incomplete shingle)
 * gets NaN for both. The run is deterministic for a fixed SEED.
 */
public final class RcfRunner {
    private RcfRunner() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length != 5) {
            System.err.println("usage: RcfRunner DIMS SHINGLE TREES SAMPLE SEED");
            System.exit(2);
        }
        int dims = Integer.parseInt(args[0]);
        int shingle = Integer.parseInt(args[1]);
        int trees = Integer.parseInt(args[2]);
        int sample = Integer.parseInt(args[3]);
        long seed = Long.parseLong(args[4]);
        int numMinSamples = 32; // OpenSearch AD: NUM_MIN_SAMPLES
        ThresholdedRandomCutForest forest = ThresholdedRandomCutForest.builder()
                .dimensions(dims * shingle)
                .shingleSize(shingle)
                .internalShinglingEnabled(true)
                .numberOfTrees(trees)
                .sampleSize(sample)
                .timeDecay(0.0001) // OpenSearch AD: TIME_DECAY
                .outputAfter(Math.max(shingle, numMinSamples))
                .initialAcceptFraction(numMinSamples * 1.0 / sample)
                .parallelExecutionEnabled(false)
                .compact(true)
                .precision(Precision.FLOAT_32)
                .boundingBoxCacheFraction(1.0)
                .anomalyRate(0.005) // OpenSearch AD: 1 - THRESHOLD_MIN_PVALUE (0.995)
                .transformMethod(TransformMethod.NORMALIZE)
                .forestMode(ForestMode.STANDARD)
                .alertOnce(true)
                .autoAdjust(true)
                .randomSeed(seed)
                .build();
        InputStream in = new BufferedInputStream(System.in, 1 << 16);
        DataInputStream data = new DataInputStream(in);
        OutputStream out = new BufferedOutputStream(System.out, 1 << 16);
        byte[] row = new byte[8 * dims];
        ByteBuffer rowBuf = ByteBuffer.wrap(row).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer res = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
        double[] point = new double[dims];
        long t = 0;
        while (true) {
            try {
                data.readFully(row);
            } catch (EOFException end) {
                break;
            }
            rowBuf.rewind();
            for (int j = 0; j < dims; j++) {
                point[j] = rowBuf.getDouble();
            }
            boolean ready = forest.getForest().isOutputReady();
            AnomalyDescriptor d = forest.process(point, t++);
            res.clear();
            if (ready) {
                res.putDouble(d.getRCFScore());
                res.putDouble(d.getAnomalyGrade());
            } else {
                res.putDouble(Double.NaN);
                res.putDouble(Double.NaN);
            }
            out.write(res.array());
        }
        out.flush();
    }
}
