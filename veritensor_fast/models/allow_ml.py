"""Reviewed pickle globals of ML libraries: PyTorch layer classes and scikit-learn estimators (data, not code).

Why these are data: a ``torch.nn`` layer class is rebuilt by ``torch.save(model)`` through ``__new__`` plus
``nn.Module.__setstate__`` (which only stores attributes); a scikit-learn estimator's ``__init__`` only stores
its parameters (the library's API contract) and ``__setstate__`` only sets attributes. Callables they hold
(``FunctionTransformer(func=...)``) are pickled as globals of their own and judged separately, so allowing
the class never allows what it carries.

The ``TORCH_NN`` and ``SKLEARN_ESTIMATORS`` tables were generated from torch 2.13 (every ``torch.nn`` class
that subclasses ``nn.Module``) and scikit-learn 1.9.1 (``sklearn.utils.all_estimators()``); other versions use
the same public classes, private module paths move occasionally (a moved class is an "unknown global" finding,
``--allow-global`` silences it). ``ML_HELPERS`` lists, one line each, the non-estimator types found in the
pickles of fitted estimators (Cython state objects, losses, links, random generators), scipy sparse matrices
networkx graphs and pandas frames, series, indexes and arrays (pandas 3.1 ``to_pickle``) (in the test data of a torch/scikit-learn environment) with why each is data.
"""

from __future__ import annotations

TORCH_NN: dict[str, str] = {
    "torch.nn.modules.activation": (
        "CELU ELU GELU GLU Hardshrink Hardsigmoid Hardswish Hardtanh LeakyReLU LogSigmoid LogSoftmax Mish "
        "MultiheadAttention PReLU RReLU ReLU ReLU6 SELU SiLU Sigmoid Softmax Softmax2d Softmin Softplus "
        "Softshrink Softsign Tanh Tanhshrink Threshold"),
    "torch.nn.modules.adaptive": "AdaptiveLogSoftmaxWithLoss",
    "torch.nn.modules.batchnorm": (
        "BatchNorm1d BatchNorm2d BatchNorm3d LazyBatchNorm1d LazyBatchNorm2d LazyBatchNorm3d SyncBatchNorm"),
    "torch.nn.modules.channelshuffle": "ChannelShuffle",
    "torch.nn.modules.container": "Container ModuleDict ModuleList ParameterDict ParameterList Sequential",
    "torch.nn.modules.conv": (
        "Conv1d Conv2d Conv3d ConvTranspose1d ConvTranspose2d ConvTranspose3d LazyConv1d LazyConv2d LazyConv3d "
        "LazyConvTranspose1d LazyConvTranspose2d LazyConvTranspose3d"),
    "torch.nn.modules.distance": "CosineSimilarity PairwiseDistance",
    "torch.nn.modules.dropout": "AlphaDropout Dropout Dropout1d Dropout2d Dropout3d FeatureAlphaDropout",
    "torch.nn.modules.flatten": "Flatten Unflatten",
    "torch.nn.modules.fold": "Fold Unfold",
    "torch.nn.modules.instancenorm": (
        "InstanceNorm1d InstanceNorm2d InstanceNorm3d LazyInstanceNorm1d LazyInstanceNorm2d LazyInstanceNorm3d"),
    "torch.nn.modules.linear": "Bilinear Identity LazyLinear Linear NonDynamicallyQuantizableLinear",
    "torch.nn.modules.loss": (
        "BCELoss BCEWithLogitsLoss CTCLoss CosineEmbeddingLoss CrossEntropyLoss GaussianNLLLoss "
        "HingeEmbeddingLoss HuberLoss KLDivLoss L1Loss LinearCrossEntropyLoss MSELoss MarginRankingLoss "
        "MultiLabelMarginLoss MultiLabelSoftMarginLoss MultiMarginLoss NLLLoss NLLLoss2d PoissonNLLLoss "
        "SmoothL1Loss SoftMarginLoss TripletMarginLoss TripletMarginWithDistanceLoss"),
    "torch.nn.modules.module": "Module",
    "torch.nn.modules.normalization": "CrossMapLRN2d GroupNorm LayerNorm LocalResponseNorm RMSNorm",
    "torch.nn.modules.padding": (
        "CircularPad1d CircularPad2d CircularPad3d ConstantPad1d ConstantPad2d ConstantPad3d ReflectionPad1d "
        "ReflectionPad2d ReflectionPad3d ReplicationPad1d ReplicationPad2d ReplicationPad3d ZeroPad1d ZeroPad2d "
        "ZeroPad3d"),
    "torch.nn.modules.pixelshuffle": "PixelShuffle PixelUnshuffle",
    "torch.nn.modules.pooling": (
        "AdaptiveAvgPool1d AdaptiveAvgPool2d AdaptiveAvgPool3d AdaptiveMaxPool1d AdaptiveMaxPool2d "
        "AdaptiveMaxPool3d AvgPool1d AvgPool2d AvgPool3d FractionalMaxPool2d FractionalMaxPool3d LPPool1d "
        "LPPool2d LPPool3d MaxPool1d MaxPool2d MaxPool3d MaxUnpool1d MaxUnpool2d MaxUnpool3d"),
    "torch.nn.modules.rnn": "GRU GRUCell LSTM LSTMCell RNN RNNBase RNNCell RNNCellBase",
    "torch.nn.modules.sparse": "Embedding EmbeddingBag",
    "torch.nn.modules.transformer": (
        "Transformer TransformerDecoder TransformerDecoderLayer TransformerEncoder TransformerEncoderLayer"),
    "torch.nn.modules.upsampling": "Upsample UpsamplingBilinear2d UpsamplingNearest2d",
}
SKLEARN_ESTIMATORS: dict[str, str] = {
    "sklearn.calibration": "CalibratedClassifierCV",
    "sklearn.cluster._affinity_propagation": "AffinityPropagation",
    "sklearn.cluster._agglomerative": "AgglomerativeClustering FeatureAgglomeration",
    "sklearn.cluster._bicluster": "SpectralBiclustering SpectralCoclustering",
    "sklearn.cluster._birch": "Birch",
    "sklearn.cluster._bisect_k_means": "BisectingKMeans",
    "sklearn.cluster._dbscan": "DBSCAN",
    "sklearn.cluster._hdbscan.hdbscan": "HDBSCAN",
    "sklearn.cluster._kmeans": "KMeans MiniBatchKMeans",
    "sklearn.cluster._mean_shift": "MeanShift",
    "sklearn.cluster._optics": "OPTICS",
    "sklearn.cluster._spectral": "SpectralClustering",
    "sklearn.compose._column_transformer": "ColumnTransformer",
    "sklearn.compose._target": "TransformedTargetRegressor",
    "sklearn.covariance._elliptic_envelope": "EllipticEnvelope",
    "sklearn.covariance._empirical_covariance": "EmpiricalCovariance",
    "sklearn.covariance._graph_lasso": "GraphicalLasso GraphicalLassoCV",
    "sklearn.covariance._robust_covariance": "MinCovDet",
    "sklearn.covariance._shrunk_covariance": "LedoitWolf OAS ShrunkCovariance",
    "sklearn.cross_decomposition._pls": "CCA PLSCanonical PLSRegression PLSSVD",
    "sklearn.decomposition._dict_learning": "DictionaryLearning MiniBatchDictionaryLearning SparseCoder",
    "sklearn.decomposition._factor_analysis": "FactorAnalysis",
    "sklearn.decomposition._fastica": "FastICA",
    "sklearn.decomposition._incremental_pca": "IncrementalPCA",
    "sklearn.decomposition._kernel_pca": "KernelPCA",
    "sklearn.decomposition._lda": "LatentDirichletAllocation",
    "sklearn.decomposition._nmf": "MiniBatchNMF NMF",
    "sklearn.decomposition._pca": "PCA",
    "sklearn.decomposition._sparse_pca": "MiniBatchSparsePCA SparsePCA",
    "sklearn.decomposition._truncated_svd": "TruncatedSVD",
    "sklearn.discriminant_analysis": "LinearDiscriminantAnalysis QuadraticDiscriminantAnalysis",
    "sklearn.dummy": "DummyClassifier DummyRegressor",
    "sklearn.ensemble._bagging": "BaggingClassifier BaggingRegressor",
    "sklearn.ensemble._forest": (
        "ExtraTreesClassifier ExtraTreesRegressor RandomForestClassifier RandomForestRegressor "
        "RandomTreesEmbedding"),
    "sklearn.ensemble._gb": "GradientBoostingClassifier GradientBoostingRegressor",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting": (
        "HistGradientBoostingClassifier HistGradientBoostingRegressor"),
    "sklearn.ensemble._iforest": "IsolationForest",
    "sklearn.ensemble._stacking": "StackingClassifier StackingRegressor",
    "sklearn.ensemble._voting": "VotingClassifier VotingRegressor",
    "sklearn.ensemble._weight_boosting": "AdaBoostClassifier AdaBoostRegressor",
    "sklearn.feature_extraction._dict_vectorizer": "DictVectorizer",
    "sklearn.feature_extraction._hash": "FeatureHasher",
    "sklearn.feature_extraction.image": "PatchExtractor",
    "sklearn.feature_extraction.text": "CountVectorizer HashingVectorizer TfidfTransformer TfidfVectorizer",
    "sklearn.feature_selection._from_model": "SelectFromModel",
    "sklearn.feature_selection._rfe": "RFE RFECV",
    "sklearn.feature_selection._sequential": "SequentialFeatureSelector",
    "sklearn.feature_selection._univariate_selection": (
        "GenericUnivariateSelect SelectFdr SelectFpr SelectFwe SelectKBest SelectPercentile"),
    "sklearn.feature_selection._variance_threshold": "VarianceThreshold",
    "sklearn.frozen._frozen": "FrozenEstimator",
    "sklearn.gaussian_process._gpc": "GaussianProcessClassifier",
    "sklearn.gaussian_process._gpr": "GaussianProcessRegressor",
    "sklearn.impute._base": "MissingIndicator SimpleImputer",
    "sklearn.impute._knn": "KNNImputer",
    "sklearn.isotonic": "IsotonicRegression",
    "sklearn.kernel_approximation": "AdditiveChi2Sampler Nystroem PolynomialCountSketch RBFSampler SkewedChi2Sampler",
    "sklearn.kernel_ridge": "KernelRidge",
    "sklearn.linear_model._base": "LinearRegression",
    "sklearn.linear_model._bayes": "ARDRegression BayesianRidge",
    "sklearn.linear_model._coordinate_descent": (
        "ElasticNet ElasticNetCV Lasso LassoCV MultiTaskElasticNet MultiTaskElasticNetCV MultiTaskLasso "
        "MultiTaskLassoCV"),
    "sklearn.linear_model._glm.glm": "GammaRegressor PoissonRegressor TweedieRegressor",
    "sklearn.linear_model._huber": "HuberRegressor",
    "sklearn.linear_model._least_angle": "Lars LarsCV LassoLars LassoLarsCV LassoLarsIC",
    "sklearn.linear_model._logistic": "LogisticRegression LogisticRegressionCV",
    "sklearn.linear_model._omp": "OrthogonalMatchingPursuit OrthogonalMatchingPursuitCV",
    "sklearn.linear_model._passive_aggressive": "PassiveAggressiveClassifier PassiveAggressiveRegressor",
    "sklearn.linear_model._perceptron": "Perceptron",
    "sklearn.linear_model._quantile": "QuantileRegressor",
    "sklearn.linear_model._ransac": "RANSACRegressor",
    "sklearn.linear_model._ridge": "Ridge RidgeCV RidgeClassifier RidgeClassifierCV",
    "sklearn.linear_model._stochastic_gradient": "SGDClassifier SGDOneClassSVM SGDRegressor",
    "sklearn.linear_model._theil_sen": "TheilSenRegressor",
    "sklearn.manifold._classical_mds": "ClassicalMDS",
    "sklearn.manifold._isomap": "Isomap",
    "sklearn.manifold._locally_linear": "LocallyLinearEmbedding",
    "sklearn.manifold._mds": "MDS",
    "sklearn.manifold._spectral_embedding": "SpectralEmbedding",
    "sklearn.manifold._t_sne": "TSNE",
    "sklearn.mixture._bayesian_mixture": "BayesianGaussianMixture",
    "sklearn.mixture._gaussian_mixture": "GaussianMixture",
    "sklearn.model_selection._classification_threshold": "FixedThresholdClassifier TunedThresholdClassifierCV",
    "sklearn.model_selection._search": "GridSearchCV RandomizedSearchCV",
    "sklearn.multiclass": "OneVsOneClassifier OneVsRestClassifier OutputCodeClassifier",
    "sklearn.multioutput": "ClassifierChain MultiOutputClassifier MultiOutputRegressor RegressorChain",
    "sklearn.naive_bayes": "BernoulliNB CategoricalNB ComplementNB GaussianNB MultinomialNB",
    "sklearn.neighbors._classification": "KNeighborsClassifier RadiusNeighborsClassifier",
    "sklearn.neighbors._graph": "KNeighborsTransformer RadiusNeighborsTransformer",
    "sklearn.neighbors._kde": "KernelDensity",
    "sklearn.neighbors._lof": "LocalOutlierFactor",
    "sklearn.neighbors._nca": "NeighborhoodComponentsAnalysis",
    "sklearn.neighbors._nearest_centroid": "NearestCentroid",
    "sklearn.neighbors._regression": "KNeighborsRegressor RadiusNeighborsRegressor",
    "sklearn.neighbors._unsupervised": "NearestNeighbors",
    "sklearn.neural_network._multilayer_perceptron": "MLPClassifier MLPRegressor",
    "sklearn.neural_network._rbm": "BernoulliRBM",
    "sklearn.pipeline": "FeatureUnion Pipeline",
    "sklearn.preprocessing._data": (
        "Binarizer KernelCenterer MaxAbsScaler MinMaxScaler Normalizer PowerTransformer QuantileTransformer "
        "RobustScaler StandardScaler"),
    "sklearn.preprocessing._discretization": "KBinsDiscretizer",
    "sklearn.preprocessing._encoders": "OneHotEncoder OrdinalEncoder",
    "sklearn.preprocessing._function_transformer": "FunctionTransformer",
    "sklearn.preprocessing._label": "LabelBinarizer LabelEncoder MultiLabelBinarizer",
    "sklearn.preprocessing._polynomial": "PolynomialFeatures SplineTransformer",
    "sklearn.preprocessing._target_encoder": "TargetEncoder",
    "sklearn.random_projection": "GaussianRandomProjection SparseRandomProjection",
    "sklearn.semi_supervised._label_propagation": "LabelPropagation LabelSpreading",
    "sklearn.semi_supervised._self_training": "SelfTrainingClassifier",
    "sklearn.svm._classes": "LinearSVC LinearSVR NuSVC NuSVR OneClassSVM SVC SVR",
    "sklearn.tree._classes": "DecisionTreeClassifier DecisionTreeRegressor ExtraTreeClassifier ExtraTreeRegressor",
}

#: (module, qualname, why it is data)
ML_HELPERS: tuple[tuple[str, str, str], ...] = (
    ("sklearn.tree._tree", "Tree", "Cython tree arrays; __setstate__ copies node/value arrays"),
    ("sklearn.neighbors._kd_tree", "KDTree", "Cython tree over arrays; __setstate__ copies arrays"),
    ("sklearn.neighbors._ball_tree", "BallTree", "Cython tree over arrays; __setstate__ copies arrays"),
    ("sklearn.neighbors._kd_tree", "newObj", "Cython helper: cls.__new__(cls); the class is its own global"),
    ("sklearn.neighbors._ball_tree", "newObj", "Cython helper: cls.__new__(cls); the class is its own global"),
    ("sklearn.metrics._dist_metrics", "newObj", "Cython helper: cls.__new__(cls); the class is its own global"),
    ("sklearn.metrics._dist_metrics", "EuclideanDistance64", "distance metric state (numbers only)"),
    ("sklearn.metrics._dist_metrics", "EuclideanDistance32", "distance metric state (numbers only)"),
    ("sklearn.metrics._dist_metrics", "ManhattanDistance64", "distance metric state (numbers only)"),
    ("sklearn.metrics._dist_metrics", "MinkowskiDistance64", "distance metric state (numbers only)"),
    ("sklearn._loss.loss", "HalfBinomialLoss", "loss object: link and closed-form functions, no I/O"),
    ("sklearn._loss.loss", "HalfSquaredError", "loss object: link and closed-form functions, no I/O"),
    ("sklearn._loss.loss", "HalfMultinomialLoss", "loss object: link and closed-form functions, no I/O"),
    ("sklearn._loss.loss", "HalfPoissonLoss", "loss object: link and closed-form functions, no I/O"),
    ("sklearn._loss.loss", "AbsoluteError", "loss object: link and closed-form functions, no I/O"),
    ("sklearn._loss._loss", "CyHalfBinomialLoss", "Cython loss kernel (no state beyond numbers)"),
    ("sklearn._loss._loss", "CyHalfSquaredError", "Cython loss kernel (no state beyond numbers)"),
    ("sklearn._loss._loss", "CyHalfMultinomialLoss", "Cython loss kernel (no state beyond numbers)"),
    ("sklearn._loss.link", "Interval", "dataclass of two floats and two bools"),
    ("sklearn._loss.link", "LogitLink", "link function object without state"),
    ("sklearn._loss.link", "IdentityLink", "link function object without state"),
    ("sklearn._loss.link", "MultinomialLogit", "link function object without state"),
    ("sklearn.linear_model._sgd_fast", "Hinge", "Cython loss with one float parameter"),
    ("sklearn.linear_model._sgd_fast", "Log", "Cython loss without state"),
    ("sklearn.linear_model._sgd_fast", "SquaredLoss", "Cython loss without state"),
    ("sklearn.ensemble._hist_gradient_boosting.binning", "_BinMapper", "estimator-like, stores bin thresholds"),
    ("sklearn.ensemble._hist_gradient_boosting.predictor", "TreePredictor", "holds node arrays"),
    ("sklearn.neural_network._stochastic_optimizers", "AdamOptimizer", "optimizer state: arrays and floats"),
    ("sklearn.neural_network._stochastic_optimizers", "SGDOptimizer", "optimizer state: arrays and floats"),
    ("sklearn.utils._bunch", "Bunch", "dict subclass"),
    *((f"scipy.sparse.{m}", f"{k}_{t}", "scipy sparse container: arrays of indices and values")
      for m0 in ("csr", "csc", "coo", "bsr", "dia", "dok", "lil") for m in (m0, f"_{m0}")
      for k in (m0,) for t in ("matrix", "array")),
    *(("networkx.classes." + m, c, "graph container: dicts of nodes/edges; pickled as __dict__ state")
      for m, c in (("graph", "Graph"), ("digraph", "DiGraph"), ("multigraph", "MultiGraph"),
                   ("multidigraph", "MultiDiGraph"))),
    *(("pandas", c, "pandas container/scalar: rebuilt from arrays, labels and numbers (__setstate__ sets them)")
      for c in ("DataFrame", "Series", "Index", "RangeIndex", "MultiIndex", "DatetimeIndex", "TimedeltaIndex",
                "PeriodIndex", "CategoricalIndex", "IntervalIndex", "Categorical", "Interval", "Period",
                "Timestamp", "Timedelta", "CategoricalDtype", "StringDtype", "BooleanDtype", "DatetimeTZDtype",
                "PeriodDtype", "IntervalDtype", "Int8Dtype", "Int16Dtype", "Int32Dtype", "Int64Dtype",
                "UInt8Dtype", "UInt16Dtype", "UInt32Dtype", "UInt64Dtype", "Float32Dtype", "Float64Dtype")),
    *(("pandas.arrays", c, "pandas extension array: values and mask arrays")
      for c in ("StringArray", "BooleanArray", "IntegerArray", "FloatingArray", "DatetimeArray", "TimedeltaArray",
                "PeriodArray", "IntervalArray", "Categorical")),
    # pandas 3.1 sparse, interval and nullable columns, and numpy masked and record arrays, pickled
    ("pandas", "NA", "the missing-value singleton"),
    ("pandas", "SparseDtype", "sparse dtype: a numpy dtype and a fill value"),
    ("pandas.arrays", "SparseArray", "sparse values, an index and a dtype"),
    ("pandas._libs.sparse", "IntIndex", "sparse positions: a length and an integer array"),
    ("pandas._libs.sparse", "BlockIndex", "sparse blocks: a length and two integer arrays"),
    ("pandas._libs.interval", "__pyx_unpickle_IntervalMixin", "Cython helper: cls.__new__ + its state; the "
     "class is its own global"),
    ("numpy.ma", "MaskedArray", "ndarray subclass: data and mask arrays"),
    ("numpy.ma.core", "MaskedArray", "ndarray subclass: data and mask arrays"),
    ("numpy.ma.core", "_mareconstruct", "ndarray.__new__ of the given (judged) subtype, shape and dtype"),
    ("numpy", "record", "numpy scalar type of a structured row"),
    ("numpy", "recarray", "ndarray subclass with field access"),
    ("numpy.rec", "recarray", "ndarray subclass with field access"),
    ("numpy.rec", "record", "numpy scalar type of a structured row"),
    ("pandas.core.internals.managers", "BlockManager", "DataFrame storage: __setstate__ builds blocks from arrays"),
    ("pandas.core.internals.managers", "SingleBlockManager", "Series storage: __setstate__ builds a block"),
    ("pandas._libs.internals", "_unpickle_block", "builds a block from (values, placement, ndim)"),
    ("pandas._libs.arrays", "__pyx_unpickle_NDArrayBacked", "Cython helper: cls.__new__ + array state; the "
     "class is its own global"),
    ("pandas.core.indexes.base", "_new_Index", "cls.__new__(cls, **d); the class is its own global"),
    ("pandas.core.indexes.datetimes", "_new_DatetimeIndex", "DatetimeIndex from its data dict"),
    ("pandas.core.indexes.multi", "MultiIndex", "levels and codes arrays"),
    ("pandas._libs.tslibs.timestamps", "_unpickle_timestamp", "Timestamp from integers and a tz"),
    ("pandas._libs.tslibs.timedeltas", "_timedelta_unpickle", "Timedelta from an integer and a unit"),
    *(("pandas._libs.tslibs.offsets", c, "date offset: integers and flags")
      for c in ("Day", "Hour", "Minute", "Second", "Milli", "Micro", "Nano", "MonthEnd", "MonthBegin", "YearEnd",
                "YearBegin", "QuarterEnd", "QuarterBegin", "Week", "BusinessDay")),
    ("numpy.random._pickle", "__randomstate_ctor", "builds RandomState from a bit-generator name or class"),
    ("numpy.random._pickle", "__generator_ctor", "builds Generator from a bit-generator name or class"),
    ("numpy.random._pickle", "__bit_generator_ctor", "looks a bit generator up by name in numpy's table"),
    ("numpy.random.mtrand", "RandomState", "PRNG; state set from integers"),
    ("numpy.random._generator", "Generator", "PRNG; state set from integers"),
    ("numpy.random._mt19937", "MT19937", "bit generator; state set from integers"),
    ("numpy.random._pcg64", "PCG64", "bit generator; state set from integers"),
    ("numpy.random._pcg64", "PCG64DXSM", "bit generator; state set from integers"),
    ("numpy.random._philox", "Philox", "bit generator; state set from integers"),
    ("numpy.random._sfc64", "SFC64", "bit generator; state set from integers"),
    ("numpy.random.bit_generator", "SeedSequence", "seed entropy holder (integers)"),
    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence", "Cython unpickle helper for SeedSequence"),
    # every estimator of scikit-learn 1.9.1 fitted with its defaults and pickled (``all_estimators()``): the
    # helpers its pickles hold besides the estimator classes above
    *(("sklearn._loss.loss", n, "loss object: link and closed-form functions, no I/O") for n in (
        "ExponentialLoss HalfGammaLoss HalfTweedieLoss HalfTweedieLossIdentity HuberLoss PinballLoss "
        "HalfBinomialLossArrayAPI HalfMultinomialLossArrayAPI HalfPoissonLossArrayAPI").split()),
    *(("sklearn._loss._loss", n, "Cython loss kernel (no state beyond numbers)") for n in (
        "CyAbsoluteError CyExponentialLoss CyHalfGammaLoss CyHalfPoissonLoss CyHalfTweedieLoss "
        "CyHalfTweedieLossIdentity CyHuberLoss CyPinballLoss").split()),
    ("sklearn._loss.link", "LogLink", "link function object without state"),
    ("sklearn._loss.link", "HalfLogitLink", "link function object without state"),
    *(("sklearn.gaussian_process.kernels", n, "kernel: hyperparameters (numbers, bounds) and sub-kernels")
       for n in ("CompoundKernel ConstantKernel DotProduct ExpSineSquared Exponentiation Matern PairwiseKernel "
                 "Product RBF RationalQuadratic Sum WhiteKernel Hyperparameter").split()),
    ("sklearn.gaussian_process._gpc", "_BinaryGaussianProcessClassifierLaplace", "fitted arrays and a kernel"),
    ("sklearn.calibration", "_CalibratedClassifier", "an estimator, its calibrators and classes"),
    ("sklearn.calibration", "_SigmoidCalibration", "two fitted floats"),
    ("sklearn.cluster._birch", "_CFNode", "clustering-feature tree node: arrays and child nodes"),
    ("sklearn.cluster._birch", "_CFSubcluster", "clustering-feature subcluster: counts and arrays"),
    ("sklearn.cluster._bisect_k_means", "_BisectingTree", "tree of centers, labels and scores"),
    ("scipy.interpolate._bsplines", "BSpline", "spline knots, coefficients and degree"),
    # functions an estimator keeps as a parameter (a score function, a pooling function): numeric only
    *(("sklearn.feature_selection._univariate_selection", n, "univariate score function (statistics)")
       for n in ("f_classif", "f_regression", "chi2", "r_regression")),
    ("sklearn.cluster._kmeans", "_kmeans_single_lloyd", "one k-means run over arrays"),
    ("sklearn.cluster._kmeans", "_kmeans_single_elkan", "one k-means run over arrays"),
    *(("numpy", n, "array reduction, FeatureAgglomeration's pooling function") for n in (
        "mean", "median", "max", "min", "sum")),
    ("scipy._lib.array_api_compat.numpy._aliases", "asarray", "numpy.asarray through scipy's array API shim"),
    # whole optimizers and schedulers (``torch.save(optimizer)``) of torch 2.13: hyperparameters, parameter
    # groups and state tensors; ``Optimizer.__setstate__`` only updates ``__dict__`` and re-wraps ``step``
    *((m, c, "optimizer: hyperparameters, parameter groups, state tensors") for m, c in (
        ("torch.optim", "Adafactor"), ("torch.optim", "Muon"), ("torch.optim.adadelta", "Adadelta"),
        ("torch.optim.adagrad", "Adagrad"), ("torch.optim.adam", "Adam"), ("torch.optim.adamax", "Adamax"),
        ("torch.optim.adamw", "AdamW"), ("torch.optim.asgd", "ASGD"), ("torch.optim.lbfgs", "LBFGS"),
        ("torch.optim.nadam", "NAdam"), ("torch.optim.radam", "RAdam"), ("torch.optim.rmsprop", "RMSprop"),
        ("torch.optim.rprop", "Rprop"), ("torch.optim.sgd", "SGD"), ("torch.optim.sparse_adam", "SparseAdam"))),
    *(("torch.optim.lr_scheduler", c, "learning-rate schedule: numbers and its optimizer (functions it holds "
       "are globals of their own)") for c in (
        "ChainedScheduler ConstantLR CosineAnnealingLR CosineAnnealingWarmRestarts CyclicLR ExponentialLR "
        "LRScheduler LambdaLR LinearLR MultiStepLR MultiplicativeLR OneCycleLR PolynomialLR ReduceLROnPlateau "
        "SequentialLR StepLR _LRScheduler").split()),
    ("torch.nn.utils.rnn", "PackedSequence", "named tuple of tensors"),
    ("torch.utils.data.dataset", "TensorDataset", "a tuple of tensors"),
    # whole-module pickles (``torch.save(model)``) of torch 2.13: hooks and the activation a layer keeps
    ("torch.nn.modules.module", "_WrappedHook", "holds a hook (a judged global) and a weakref to its module"),
    *(("torch.nn.utils.spectral_norm", n, "spectral-norm hook: numbers and a parameter name")
       for n in ("SpectralNorm", "SpectralNormStateDictHook", "SpectralNormLoadStateDictPreHook")),
    ("torch.nn.utils.weight_norm", "WeightNorm", "weight-norm hook: a parameter name and a dim"),
    *(("torch.nn.utils.prune", n, "pruning method: amount, dim, norm and a parameter name")
       for n in ("PruningContainer", "Identity", "RandomUnstructured", "L1Unstructured", "RandomStructured",
                 "LnStructured", "CustomFromMask")),
    *(("torch.nn.functional", n, "activation function a layer keeps (tensor math only)")
       for n in ("relu", "gelu", "silu", "elu", "selu", "celu", "leaky_relu", "relu6", "hardswish", "mish",
                 "softplus", "tanh", "sigmoid", "glu")),
    *(("torch._C._nn", n, "builtin activation kept by a layer (torch.nn.functional's C implementation)")
       for n in ("gelu", "silu", "elu", "leaky_relu", "relu6", "hardswish", "mish", "softplus", "glu")),
)


def ml_allowed() -> list[tuple[str, str]]:
    """Every (module, qualname) pair of this module's tables."""
    out = [(m, q) for table in (TORCH_NN, SKLEARN_ESTIMATORS) for m, names in table.items() for q in names.split()]
    return out + [(m, q) for m, q, _ in ML_HELPERS]
