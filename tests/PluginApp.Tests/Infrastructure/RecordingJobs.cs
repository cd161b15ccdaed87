using Hangfire;
using Hangfire.Common;
using Hangfire.States;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using PluginApp.Training;

namespace PluginApp.Tests.Infrastructure;

/// <summary>Keeps the jobs the app would queue on Hangfire instead of queueing them, so a test can read what was asked for.</summary>
public sealed class RecordingJobs : IBackgroundJobClient
{
    private readonly List<Job> _jobs = [];

    /// <summary>The first argument of every job kept (for the scheduler's jobs, the shop).</summary>
    public IReadOnlyList<string> Shops => Args(0);

    /// <summary>Each job's argument at <paramref name="index"/>, as text.</summary>
    public IReadOnlyList<string> Args(int index)
    {
        lock (_jobs) return _jobs.Select(j => j.Args[index]?.ToString() ?? "").ToList();
    }

    /// <summary>The trainings asked for, as (shop, model kind).</summary>
    public IReadOnlyList<(string Shop, string Kind)> Trainings => Shops.Zip(Args(1)).ToList();

    /// <summary>How many of the next jobs to refuse, as Hangfire does when its storage cannot be reached.</summary>
    public int FailNext { get; set; }

    public string Create(Job job, IState state)
    {
        lock (_jobs)
        {
            if (FailNext > 0 && FailNext-- > 0) throw new BackgroundJobClientException("the job storage could not be reached", new TimeoutException());
            _jobs.Add(job);
        }
        return Guid.NewGuid().ToString("N");
    }

    public bool ChangeState(string jobId, IState state, string expectedState) => false;

    /// <summary>The app's check for shops with enough new orders, queueing its trainings here instead of on Hangfire.</summary>
    public static (NewOrdersTrainingJob Job, RecordingJobs Queued) NewOrdersTraining(AppFixture app, int retrainAfterNewOrders)
    {
        var queued = new RecordingJobs();
        var services = app.Factory.Services;
        var job = ActivatorUtilities.CreateInstance<NewOrdersTrainingJob>(services,
            ActivatorUtilities.CreateInstance<TrainingScheduler>(services, (IBackgroundJobClient)queued),
            Options.Create(new TrainingOptions { RetrainAfterNewOrders = retrainAfterNewOrders }));
        return (job, queued);
    }
}
